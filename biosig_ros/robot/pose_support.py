"""The current pose (IK joint states) for assistance: gravity support from a biorbd model, and
the checks that make a pose unsafe to act on.

Gravity support for an exoskeleton joint = support_fraction x sign x the model's inverse
dynamics at the current pose with zero velocity and acceleration, for the model DoF mapped to
that joint: the torque that holds the limb still against gravity. A pose is refused when it is
non-finite, outside the model's ranges (plus a margin) on a watched DoF, or when a watched DoF
jumped by more than max_step since the previous pose: what an IK re-initialisation or skipped
frames look like from outside the IK node.
"""
from __future__ import annotations

import math

import numpy as np

from biosig_ros.processing.ik_model import IkModel, free_rotations
from biosig_ros.robot.assist_law import InputFault

try:  # biorbd's SWIG typemaps leak on every numpy argument (~0.5 kB a call: 165 MB/h at 100 Hz)
    from biosig_ros.processing.ik_biorbd import Aliased
except ImportError:  # pragma: no cover - a build without the IK change that brings it
    Aliased = None


class PoseSupport:
    """Joint-state positions (by name) -> gravity torque per exoskeleton joint, with checks."""

    def __init__(self, model: IkModel, gravity_dofs: list[str], signs: list[float],
                 support_fraction: float, watch_dofs: list[str], range_margin: float,
                 max_step: float):
        self.model = model
        names = list(model.dof_names)
        self._gravity_index = np.array([names.index(d) if d else 0 for d in gravity_dofs])
        self._gravity_scale = np.array(
            [support_fraction * s if d else 0.0 for d, s in zip(gravity_dofs, signs)])
        self.uses_gravity = bool(self._gravity_scale.any())
        self.watch = np.array([names.index(d) for d in (watch_dofs or names)])
        self._limits = [(int(k), float(model.q_min[k] - range_margin),
                         float(model.q_max[k] + range_margin)) for k in self.watch]
        # IK publishes a free rotation wrapped (ik_continuity): its step is taken modulo 2 pi
        self._free = set(np.flatnonzero(free_rotations(model.q_min, model.q_max,
                                                       model.rotational)).tolist())
        self.max_step = max_step
        self._q, self._zero = self._vectors(model)
        self._order_list: list[int] = []  # message index of each model DoF
        self._bound_names: list[str] | None = None
        self._previous: list[float] | None = None
        self.q: list[float] = [0.0] * model.nb_q
        self.gravity = np.zeros(len(gravity_dofs))

    def bind(self, names: list[str]) -> None:
        """Match the joint states' names to the model's DoFs (InputFault when one is missing)."""
        if names == self._bound_names:
            return
        index = {n: i for i, n in enumerate(names)}
        missing = [d for d in self.model.dof_names if d not in index]
        if missing:
            self._bound_names = None
            raise InputFault(f"joint states lack model DoF(s) {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}")
        self._order_list = [index[d] for d in self.model.dof_names]
        self._bound_names = list(names)
        self._previous = None

    @staticmethod
    def _vectors(model: IkModel):
        """q as a biorbd vector written in place (leak-free) when possible, and the zero
        velocity and acceleration (allocated once)."""
        import biorbd

        # Built from numpy once (one small leak at start): the model-sized constructors leave
        # the memory uninitialised.
        zero = (biorbd.GeneralizedVelocity(np.zeros(model.nb_q)),
                biorbd.GeneralizedAcceleration(np.zeros(model.nb_q)))
        if Aliased is None:
            return None, zero
        q = Aliased(biorbd.GeneralizedCoordinates(model.model), model.nb_q,
                    biorbd.GeneralizedCoordinates)
        return q, zero

    @property
    def leak_free(self) -> bool:
        """False where each gravity computation leaks biorbd memory (see _vectors)."""
        return self._q is not None and self._q.leak_free

    def watch_names(self) -> list[str]:
        return [self.model.dof_names[i] for i in self.watch]

    def reset(self) -> None:
        """Forget the previous pose (no step check against a pose from before a pause)."""
        self._previous = None

    def update(self, positions) -> np.ndarray:
        """Gravity torque per joint (N.m) for these positions (in the bound names' order)."""
        # Python floats, not numpy: a joint state comes every 10 ms to a sleeping process,
        # where each numpy call costs about ten times what it costs back to back.
        q = [positions[i] for i in self._order_list]
        previous, self._previous = self._previous, q
        if not all(map(math.isfinite, q)):
            self._previous = None
            raise InputFault("non-finite value (NaN or inf) in the joint states")
        for k, low, high in self._limits:
            if not low <= q[k] <= high:
                raise InputFault(f"pose out of range: {self.model.dof_names[k]} = {q[k]:.3f} "
                                 f"rad outside [{self.model.q_min[k]:.3f}, "
                                 f"{self.model.q_max[k]:.3f}]")
        if previous is not None and self.max_step > 0:
            step, k = -1.0, 0
            for j, _, _ in self._limits:  # the largest step (the first of equal ones)
                change = q[j] - previous[j]
                if j in self._free:
                    change = (change + math.pi) % (2 * math.pi) - math.pi
                if abs(change) > step:
                    step, k = abs(change), j
            if step > self.max_step:
                raise InputFault(f"pose jumped: {self.model.dof_names[k]} moved {step:.3f} rad "
                                 f"in one frame (IK re-initialisation or skipped frames; "
                                 f"max_pose_step {self.max_step:g})")
        self.q = q
        if self.uses_gravity:
            coordinates = self._q.set(q) if self._q is not None else np.array(q)
            tau = self.model.model.InverseDynamics(coordinates, *self._zero).to_array()
            self.gravity = tau[self._gravity_index] * self._gravity_scale
        return self.gravity
