"""What in the IK node's per-frame quality (biosig_ros/IkQuality on ik/quality) makes a pose
unsafe to act on. ROS-free: the message is read by its field names (any object with them)."""
from __future__ import annotations


def quality_problem(msg, watched: list[str] | tuple = (), underdetermined: bool = True) -> str:
    """Why a pose with this quality must not be acted on ("" when none): a filter
    (re-)initialisation (IK also flags every discontinuity this way), a watched DoF (any DoF
    when watched is empty) out of the model's range, or (underdetermined) a segment seen by too
    few markers to be solved."""
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
