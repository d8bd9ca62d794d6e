"""The IK quality message, for consumers that act on poses (assist_node), when it exists.

The IK node's per-frame quality (DoFs out of range, under-determined segments, frames skipped,
filter re-initialised) is being added as its own message; until the package defines it,
quality_type() returns None and consumers check the pose themselves (robot.pose_support).
"""
from __future__ import annotations

import importlib

# Candidate message names and fields, first match wins: the IK quality message is new.
_TYPE_NAMES = ("IkQuality",)
_REINITIALISED = ("reinitialised", "reinitialized", "just_reinitialised")
_OUT_OF_RANGE = ("out_of_range_dofs", "dofs_out_of_range")


def quality_type():
    """The package's IK quality message class, or None while it does not exist."""
    module = importlib.import_module("biosig_ros.msg")
    for name in _TYPE_NAMES:
        if hasattr(module, name):
            return getattr(module, name)
    return None


def quality_problem(msg, watched: list[str] | tuple = ()) -> str:
    """Why a pose with this quality must not be acted on ("" when none): a filter
    re-initialisation, or a watched DoF (any DoF when watched is empty) out of range."""
    for field in _REINITIALISED:
        if getattr(msg, field, False):
            return "IK re-initialised at this frame"
    for field in _OUT_OF_RANGE:
        outside = [d for d in getattr(msg, field, ()) if not watched or d in watched]
        if outside:
            return f"DoF(s) out of the model's range: {', '.join(outside)}"
    return ""
