"""What in the IK node's per-frame quality (biosig_ros/IkQuality on ik/quality) makes a pose
unsafe to act on. ROS-free: the message is read by its field names (any object with them)."""
from __future__ import annotations


def quality_problem(msg, watched: list[str] | tuple = (), underdetermined: bool = True) -> str:
    """Why a pose with this quality must not be acted on ("" when none): a filter
    (re-)initialisation or a discontinuity (a step of a watched DoF), a watched DoF (any DoF
    when watched is empty) out of the model's range, or (underdetermined) a segment seen by too
    few markers to be solved."""
    if msg.reinitialised:
        reason = msg.reinitialisation_reason or "tracking (re)started"
        return f"IK re-initialised at frame {msg.frame_number}: {reason}"
    # discontinuity (newer IK builds): a step beyond IK's max_pose_step counts when it is on a
    # watched DoF; one without named DoFs (a restart of the source, a long gap) always does.
    if getattr(msg, "discontinuity", False):
        stepped = list(getattr(msg, "dofs_stepped", []))
        if not stepped or not watched or any(d in watched for d in stepped):
            return (f"IK pose discontinuous at frame {msg.frame_number}: "
                    f"{getattr(msg, 'discontinuity_reason', '') or 'not continuing the last'}")
    outside = [d for d in msg.dofs_out_of_range if not watched or d in watched]
    if outside:
        return f"IK: DoF(s) out of the model's range: {', '.join(outside)}"
    if underdetermined and msg.underdetermined_segments:
        return ("IK: segment(s) seen by too few markers to be solved: "
                f"{', '.join(msg.underdetermined_segments)}")
    return ""
