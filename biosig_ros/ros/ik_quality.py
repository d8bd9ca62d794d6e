"""The IK node's per-frame quality (biosig_ros/IkQuality on ik/quality), for consumers that act
on poses (assist_node).

quality_type() returns None where the package was built without that message (older builds):
consumers then rely on their own pose checks (robot.pose_support).
"""
from __future__ import annotations

import importlib

from biosig_ros.robot.pose_quality import quality_problem  # noqa: F401 (its home before)


def quality_type():
    """The package's IkQuality message class, or None when it does not exist."""
    return getattr(importlib.import_module("biosig_ros.msg"), "IkQuality", None)
