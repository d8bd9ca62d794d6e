"""Audit of what ik_node published, as a consumer receives it (ROS-free: fed the messages'
fields in arrival order). Used by test_ik_continuity_node.py and benchmarks/ik_continuity.py.

For every JointState: its IkQuality (same stamp) arrived before it; every angle within the
model's range (bounded DoFs) or the free-rotation convention [centre - pi, centre + pi); every
step from the previous published pose beyond max_pose_step / max_translation_step (free
rotations modulo 2 pi) flagged `discontinuity` on that frame's quality. A step is only judged
when the previous published pose was received too (else counted as lost in transport).
"""
from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from biosig_ros.processing.ik_continuity import PoseContinuity
from biosig_ros.processing.ik_model import IkModel

_KEEP = 2000  # qualities kept waiting for their joint states (20 s at 100 Hz)
_RANGE_TOLERANCE = 1e-6


@dataclass
class Quality:
    frame_number: int
    frames_skipped: int
    discontinuity: bool
    reason: str
    dofs_stepped: tuple[str, ...]
    dofs_out_of_range: tuple[str, ...]


@dataclass
class IkAudit:
    model: IkModel
    max_pose_step: float = 0.1
    max_translation_step: float = 0.02
    poses: int = 0
    qualities: int = 0
    without_quality: int = 0           # joint states whose quality had not arrived before
    quality_after_pose: int = 0        # ... and arrived afterwards
    steps_judged: int = 0
    steps_beyond: int = 0              # steps beyond a limit (all flagged if the node is right)
    unflagged: list = field(default_factory=list)    # (frame, dof, step) beyond and unflagged
    mislisted: int = 0                 # flagged steps whose dofs_stepped differs from ours
    lost_in_transport: int = 0         # poses whose previous published pose never arrived
    outside_range: Counter = field(default_factory=Counter)   # bounded DoF -> poses outside
    outside_convention: Counter = field(default_factory=Counter)  # free rotation -> poses
    discontinuities: Counter = field(default_factory=Counter)  # reason kind -> count
    largest_unflagged_step: float = 0.0  # rad, rotations
    rotation_steps: list = field(default_factory=list)  # largest rotational step per pose

    def __post_init__(self):
        self.continuity = PoseContinuity(self.model, self.max_pose_step,
                                         self.max_translation_step)
        self._low = np.where(self.continuity.free, self.continuity.wrap_low,
                             self.model.q_min - _RANGE_TOLERANCE)
        self._high = np.where(self.continuity.free, self.continuity.wrap_low + 2 * math.pi,
                              self.model.q_max + _RANGE_TOLERANCE)
        self._pending: OrderedDict[int, Quality] = OrderedDict()
        self._orphans: set[int] = set()
        self._previous: tuple[int, np.ndarray] | None = None  # (frame_number, q)
        self._names = list(self.model.dof_names)

    def on_quality(self, stamp: int, quality: Quality) -> None:
        self.qualities += 1
        if stamp in self._orphans:
            self._orphans.discard(stamp)
            self.quality_after_pose += 1
            return
        self._pending[stamp] = quality
        while len(self._pending) > _KEEP:
            self._pending.popitem(last=False)

    def on_pose(self, stamp: int, names, positions) -> None:
        self.poses += 1
        quality = self._pending.pop(stamp, None)
        if quality is None:
            self.without_quality += 1
            self._orphans.add(stamp)
            self._previous = None
            return
        lookup = {name: i for i, name in enumerate(names)}
        q = np.array([positions[lookup[n]] for n in self._names], dtype=float)
        free = self.continuity.free
        outside = (q < self._low) | (q > self._high) | ((q >= self._high) & free)
        for index in np.flatnonzero(outside):
            (self.outside_convention if free[index] else self.outside_range)[
                self._names[index]] += 1
        if quality.discontinuity:
            self.discontinuities[_kind(quality.reason)] += 1
        previous, self._previous = self._previous, (quality.frame_number, q)
        if previous is None:
            return
        if previous[0] != quality.frame_number - quality.frames_skipped - 1:
            self.lost_in_transport += 1
            return
        steps = self.continuity.steps(q, previous[1])
        self.steps_judged += 1
        rotations = steps[self.model.rotational]
        self.rotation_steps.append(float(rotations.max()) if len(rotations) else 0.0)
        beyond = np.flatnonzero(steps > self.continuity.limits)
        self.steps_beyond += int(len(beyond) > 0)
        if not len(beyond):
            return
        if not quality.discontinuity:
            for index in beyond:
                self.unflagged.append((quality.frame_number, self._names[index],
                                       float(steps[index])))
                if self.model.rotational[index]:
                    self.largest_unflagged_step = max(self.largest_unflagged_step,
                                                      float(steps[index]))
        elif set(quality.dofs_stepped) != {self._names[i] for i in beyond}:
            self.mislisted += 1

    def problems(self) -> list[str]:
        """What a consumer could not rely on ([] when everything held)."""
        found = []
        if self.without_quality:
            found.append(f"{self.without_quality} joint states arrived before their quality "
                         f"({self.quality_after_pose} of those qualities came later)")
        if self.unflagged:
            found.append(f"{len(self.unflagged)} unflagged steps beyond the limits, first "
                         f"{self.unflagged[:3]}")
        if self.outside_range:
            found.append(f"angles outside the model's ranges: {dict(self.outside_range)}")
        if self.outside_convention:
            found.append(f"free rotations outside [centre - pi, centre + pi): "
                         f"{dict(self.outside_convention)}")
        if self.mislisted:
            found.append(f"{self.mislisted} flagged steps with other dofs_stepped than seen")
        return found

    def summary(self) -> str:
        steps = np.degrees(np.array(self.rotation_steps)) if self.rotation_steps else np.zeros(1)
        return (f"poses {self.poses}, qualities {self.qualities}; steps judged "
                f"{self.steps_judged} (lost in transport: {self.lost_in_transport}); steps "
                f"beyond the limits {self.steps_beyond}, unflagged {len(self.unflagged)}; "
                f"largest rotational step per frame p50 {np.percentile(steps, 50):.2f} deg, "
                f"p99 {np.percentile(steps, 99):.2f} deg, max {steps.max():.1f} deg; "
                f"discontinuities {dict(self.discontinuities)}; outside ranges "
                f"{dict(self.outside_range) or 0}; free rotations outside the convention "
                f"{dict(self.outside_convention) or 0}; joint states before their quality "
                f"{self.without_quality}")


def _kind(reason: str) -> str:
    """A discontinuity reason without its numbers, to count them by kind."""
    for marker, kind in (("tracking started", "tracking started"),
                         ("markers jumped", "markers jumped (loop restart)"),
                         ("went back", "source restarted"),
                         ("frames skipped", "long gap"),
                         ("re-initialised", "re-initialised (other)"),
                         ("step of", "step beyond the limits")):
        if marker in reason:
            return kind
    return reason or "?"


def quality_of(msg) -> Quality:
    """The audit's view of a biosig_ros/IkQuality message."""
    return Quality(int(msg.frame_number), int(msg.frames_skipped), bool(msg.discontinuity),
                   msg.discontinuity_reason, tuple(msg.dofs_stepped),
                   tuple(msg.dofs_out_of_range))


def stamp_key(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec
