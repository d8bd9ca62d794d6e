"""Assistance that follows the person's own joint torque: per joint, command = torque_gain x
the muscle torque of one model DoF (torque_node's torque/muscle, a JointState with an effort
per DoF). The DoF names are bound once per name list; each frame then costs one lookup per
joint."""
from __future__ import annotations

from collections import OrderedDict

from biosig_ros.robot.assist_law import InputFault

_KEPT = 64  # qualities waiting for their frame (a frame arrives within a frame or two)


def stamp_key(stamp: float) -> int:
    """Nanoseconds: pairs an input with the quality of the same frame (a pose with its
    IkQuality, a muscle torque with its torque/quality: both stamps converted from the same
    header fields the same way, sec + nanosec x 1e-9)."""
    return round(stamp * 1e9)


class QualityByStamp:
    """torque/quality problems ("" = clean) waiting for the muscle torque of their frame."""

    def __init__(self):
        self._kept: OrderedDict[int, str] = OrderedDict()

    def keep(self, stamp: float, problem: str) -> None:
        self._kept[stamp_key(stamp)] = problem
        while len(self._kept) > _KEPT:
            self._kept.popitem(last=False)

    def pop(self, stamp: float) -> str | None:
        """The problem of the frame stamped `stamp`, None when its quality has not come."""
        return self._kept.pop(stamp_key(stamp), None)


class MuscleTorqueLaw:
    def __init__(self, dofs: list[str], gains: list[float]):
        """dofs: per joint, the model DoF followed ('' = none: 0); gains: N.m per N.m."""
        self.dofs = list(dofs)
        self.gains = [float(g) for g in gains]
        self._bound: list[str] | None = None
        self._index: list[int | None] = []

    def bind(self, names) -> None:
        """Index the followed DoFs in the message's names; InputFault when one is missing."""
        names = list(names)
        if names == self._bound:
            return
        self._bound = None
        missing = [d for d in self.dofs if d and d not in names]
        if missing:
            raise InputFault(f"muscle torque has no DoF(s) {', '.join(missing)} (it has "
                             f"{', '.join(names[:6]) or 'none'}{'...' if len(names) > 6 else ''})")
        position = {n: i for i, n in enumerate(names)}
        self._index = [position[d] if d else None for d in self.dofs]
        self._bound = names

    def torque(self, efforts) -> list[float]:
        """Assistance per joint (N.m) from the bound message's efforts (may be non-finite:
        the controller checks)."""
        return [0.0 if i is None else g * float(efforts[i])
                for i, g in zip(self._index, self.gains)]
