"""Joint angles a controller can use: one convention for free rotations, and every break
between consecutive published poses named.

Convention. A rotation whose range spans a full turn or more is *free*: its angle only matters
modulo 2 pi (biorbd gives a rotation that its .bioMod leaves without `ranges` the range
[-pi, pi], e.g. the Wu model's thorax). A free rotation is published wrapped into
[centre - pi, centre + pi), centre the middle of its range ([-pi, pi) for the Wu thorax), so
it never leaves the model's range; its step is taken modulo 2 pi (a wrap is no step). Every
other DoF (bounded rotations, translations) is published as solved: continuous from frame to
frame (a restart's fit is unwrapped to the nearest turn of the last pose), flagged when outside
its range (ik_quality.QualityCheck).

Discontinuity. A pose that does not continue the previous published one: a (re-)initialisation
(first frame, divergence, source restarted, markers jumped, long gap), or a step of any DoF
beyond max_pose_step (rotations, radians) or max_translation_step (translations, metres) from
the previous published pose, whatever the frames between them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from biosig_ros.processing.ik_model import IkModel, free_rotations, wrapped_step


@dataclass
class Continuity:
    """How a published pose follows the previous one."""

    discontinuity: bool = False
    reason: str = ""
    stepped: list[int] = field(default_factory=list)  # DoF indices beyond their step limit
    largest_rotation_step: float = 0.0                # rad (free rotations modulo 2 pi)


class PoseContinuity:
    """wrap(q) into the convention; follow(q, restart) -> Continuity against the previous
    published pose. A few microseconds per frame (vector arithmetic on nb_q values)."""

    def __init__(self, model: IkModel, max_pose_step: float, max_translation_step: float):
        self.dof_names = model.dof_names
        self.rotational = model.rotational.copy()
        self.free = free_rotations(model.q_min, model.q_max, model.rotational)
        self.wrap_low = np.where(self.free, (model.q_min + model.q_max) / 2 - math.pi, 0.0)
        self.limits = np.where(model.rotational, max_pose_step, max_translation_step)
        self.previous: np.ndarray | None = None

    def wrap(self, q: np.ndarray) -> tuple[np.ndarray, bool]:
        """q with its free rotations in [centre - pi, centre + pi), and whether any moved."""
        if not self.free.any():
            return q, False
        outside = self.free & ((q < self.wrap_low) | (q >= self.wrap_low + 2 * math.pi))
        if not outside.any():  # (the modulo would move values inside by a rounding error)
            return q, False
        return np.where(outside, (q - self.wrap_low) % (2 * math.pi) + self.wrap_low, q), True

    def steps(self, q: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """|q - previous| per DoF, free rotations modulo 2 pi."""
        return np.abs(wrapped_step(q - previous, self.free))

    def follow(self, q: np.ndarray, restart: str = "") -> Continuity:
        """The published pose q (wrapped) against the previous one. restart: why tracking
        (re)started at this frame ("" when it did not)."""
        previous, self.previous = self.previous, q
        if previous is None:
            return Continuity(True, restart or "first pose")
        steps = self.steps(q, previous)
        if not math.isfinite(steps.sum()):
            return Continuity(True, restart or "non-finite pose", [], math.inf)
        largest = float(steps.max(initial=0.0, where=self.rotational))
        over = steps > self.limits
        if not restart and not over.any():
            return Continuity(False, "", [], largest)
        beyond = np.flatnonzero(over)
        reasons = [restart] if restart else []
        if len(beyond):
            worst = int(beyond[np.argmax(steps[beyond] / self.limits[beyond])])
            unit = "rad" if self.rotational[worst] else "m"
            limit = "max_pose_step" if self.rotational[worst] else "max_translation_step"
            reasons.append(f"step of {steps[worst]:.3f} {unit} in {self.dof_names[worst]} "
                           f"({limit} {self.limits[worst]:g})"
                           + (f" and {len(beyond) - 1} other DoF(s)" if len(beyond) > 1 else ""))
        return Continuity(True, "; ".join(reasons), beyond.tolist(), largest)

    def reset(self) -> None:
        self.previous = None


# --- breaks in the incoming stream --------------------------------------------------------

def source_restart(last_frame_number: int | None, last_stamp: float | None, frame_number: int,
                   stamp: float, frame_rate: float) -> str:
    """Why this frame cannot follow the last solved one ("" when it can): its frame number or
    its stamp went back (by more than a frame period: jitter is not a restart), i.e. the source
    restarted (a replay or a recording played again)."""
    if last_frame_number is not None and frame_number < last_frame_number:
        return (f"frame number went back from {last_frame_number} to {frame_number}: "
                "the source restarted")
    period = 1.0 / frame_rate if frame_rate > 0 else 0.0
    if last_stamp is not None and stamp < last_stamp - period:
        return f"stamp went back by {last_stamp - stamp:.3f} s: the source restarted"
    return ""


def marker_jump(previous: np.ndarray | None, targets: np.ndarray, elapsed: float,
                max_speed: float, names) -> str:
    """Why the markers cannot have moved this way ("" when they can): a marker seen in both
    frames moved faster than max_speed (m/s) over `elapsed` seconds, i.e. the stream jumped to
    other data (a replay's loop restart) or markers were relabelled."""
    if previous is None or not elapsed > 0:
        return ""
    squared = ((targets - previous) ** 2).sum(axis=1)  # NaN where unseen in either frame
    # fmax ignores NaN (NaN only if unseen everywhere, and NaN > x is False): the common case
    # costs four numpy calls
    if not np.fmax.reduce(squared) > (max_speed * elapsed) ** 2:
        return ""
    worst = int(np.nanargmax(squared))
    distance = math.sqrt(squared[worst])
    return (f"markers jumped ({names[worst]} {distance * 1000:.0f} mm in "
            f"{elapsed * 1000:.0f} ms): the source jumped (a replay's loop restart) or markers "
            "were relabelled")
