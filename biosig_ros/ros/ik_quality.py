"""The IK node's per-frame quality (biosig_ros/IkQuality on ik/quality), for consumers that act
on poses (assist_node).

quality_type() returns None where the package was built without that message (older builds):
consumers then rely on their own pose checks (robot.pose_support).
"""
from __future__ import annotations

import importlib


def quality_type():
    """The package's IkQuality message class, or None when it does not exist."""
    return getattr(importlib.import_module("biosig_ros.msg"), "IkQuality", None)


def quality_problem(msg, watched: list[str] | tuple = (), underdetermined: bool = True) -> str:
    """Why a pose with this quality must not be acted on ("" when none): a filter
    (re-)initialisation, a watched DoF (any DoF when watched is empty) out of the model's range,
    or (underdetermined) a segment seen by too few markers to be solved."""
    if msg.reinitialised:
        reason = msg.reinitialisation_reason or "tracking (re)started"
        return f"IK re-initialised at frame {msg.frame_number}: {reason}"
    outside = [d for d in msg.dofs_out_of_range if not watched or d in watched]
    if outside:
        return f"IK: DoF(s) out of the model's range: {', '.join(outside)}"
    if underdetermined and msg.underdetermined_segments:
        return ("IK: segment(s) seen by too few markers to be solved: "
                f"{', '.join(msg.underdetermined_segments)}")
    return ""
