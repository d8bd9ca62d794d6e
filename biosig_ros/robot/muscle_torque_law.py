"""Assistance that follows the person's own joint torque: per joint, command = torque_gain x
the muscle torque of one model DoF (torque_node's torque/muscle, a JointState with an effort
per DoF). The DoF names are bound once per name list; each frame then costs one lookup per
joint."""
from __future__ import annotations

from biosig_ros.robot.assist_law import InputFault

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
