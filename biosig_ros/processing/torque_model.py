"""A biorbd musculoskeletal model for joint torques: muscle torque from activations and
inverse dynamics, every per-frame vector passed leak-free (see ik_biorbd.Aliased).

Hill-type muscle forces are linear in activation at a given pose and velocity, so the muscle
torque is passive(q, qdot) + sum over muscles of activation * active_torque(q, qdot): the
calibration uses this (muscle_basis).

Activations never go through biorbd's State setters: in biorbd 1.12.4 every
`State.setActivation` / `setExcitation` call leaks 32 bytes (measured: 9.5 MB per 300k calls;
31 muscles at 100 Hz would be about 360 MB per hour). Instead, two fixed state sets (all
muscles at activation 1, all at 0) give each muscle's force at full and at zero activation for
the pose; the forces at the wanted activations are interpolated between them (exact: the force
is linear in activation) and turned into joint torques by `muscularJointTorque(forces)`, all
through vectors allocated once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.ik_biorbd import Aliased
from biosig_ros.processing.ik_model import dof_ranges, free_rotations


class TorqueModel:
    """One biorbd model; not thread-safe (one owner)."""

    def __init__(self, path: str | Path):
        import biorbd

        self.path = resolve_data_path(str(path))
        if not self.path.is_file():
            raise ConfigError(f"parameter 'model_path': model file {self.path} does not exist")
        try:
            self.model = biorbd.Model(str(self.path))
        except Exception as error:  # noqa: BLE001 - biorbd raises RuntimeError and others
            raise ConfigError(f"model {self.path} could not be loaded: {error}") from error
        self.nb_q = self.model.nbQ()
        self.free_rotations = free_rotations(*dof_ranges(self.model))  # published wrapped
        self.dof_names = tuple(n.to_string() for n in self.model.nameDof())
        self.muscle_names = tuple(n.to_string() for n in self.model.muscleNames())
        if not self.muscle_names:
            raise ConfigError(f"model {self.path} has no muscles: no muscle torque to compute")
        count = len(self.muscle_names)
        self._full = [biorbd.State(1.0, 1.0) for _ in range(count)]   # (excitation, activation)
        self._zero = [biorbd.State(0.0, 0.0) for _ in range(count)]
        self._forces = Aliased(biorbd.Vector(count), count, biorbd.Vector)
        self._q = Aliased(biorbd.GeneralizedCoordinates(self.model), self.nb_q,
                          biorbd.GeneralizedCoordinates)
        self._qdot = Aliased(biorbd.GeneralizedVelocity(self.model), self.nb_q,
                             biorbd.GeneralizedVelocity)
        self._qddot = Aliased(biorbd.GeneralizedAcceleration(self.model), self.nb_q,
                              biorbd.GeneralizedAcceleration)

    @property
    def leak_free(self) -> bool:
        return all(v.leak_free for v in (self._q, self._qdot, self._qddot, self._forces))

    def force_range(self, q: np.ndarray, qdot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each muscle's force (N) at activation 0 and at activation 1, at this pose and
        velocity; updates the muscles' geometry for torques_from_forces."""
        full = self.model.muscleForces(self._full, self._q.set(q), self._qdot.set(qdot))
        zero = self.model.muscleForces(self._zero)  # same geometry: no second update
        return np.asarray(zero.to_array(), dtype=float), np.asarray(full.to_array(), dtype=float)

    def torques_from_forces(self, forces: np.ndarray) -> np.ndarray:
        """Joint torques of these muscle forces, at the geometry of the last force_range."""
        self._forces.set(forces)
        return np.asarray(self.model.muscularJointTorque(self._forces.obj).to_array(),
                          dtype=float)

    def muscle_torque(self, activations: np.ndarray, q: np.ndarray, qdot: np.ndarray,
                      force_scale: np.ndarray | None = None) -> np.ndarray:
        """Joint torque (N.m or N per DoF) of the muscles at these activations (0..1), each
        muscle's active force scaled by force_scale (default 1)."""
        zero, full = self.force_range(q, qdot)
        active = np.asarray(activations, dtype=float) * (full - zero)
        if force_scale is not None:
            active = active * force_scale
        return self.torques_from_forces(zero + active)

    def muscle_columns(self, muscles, activations: np.ndarray, q: np.ndarray,
                       qdot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passive torque, len(muscles) x nq): each listed muscle's active torque alone."""
        zero, full = self.force_range(q, qdot)
        passive = self.torques_from_forces(zero)
        columns = np.empty((len(muscles), self.nb_q))
        for row, muscle in enumerate(muscles):
            forces = zero.copy()
            forces[muscle] += activations[muscle] * (full[muscle] - zero[muscle])
            columns[row] = self.torques_from_forces(forces) - passive
        return passive, columns

    def inverse_dynamics(self, q: np.ndarray, qdot: np.ndarray, qddot: np.ndarray) -> np.ndarray:
        """Net joint torque that produces this motion (no external forces)."""
        torque = self.model.InverseDynamics(self._q.set(q), self._qdot.set(qdot),
                                            self._qddot.set(qddot))
        return np.asarray(torque.to_array(), dtype=float)

    def mass_matrix(self, q: np.ndarray) -> np.ndarray:
        """nq x nq joint-space mass matrix at q (for forward simulations)."""
        return np.asarray(self.model.massMatrix(self._q.set(q)).to_array(), dtype=float)

    def muscle_basis(self, groups: list[np.ndarray], activations: np.ndarray, q: np.ndarray,
                     qdot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passive torque, groups x nq active torques): each group's muscles at the given
        activations, the others at zero, minus the passive torque."""
        zero, full = self.force_range(q, qdot)
        passive = self.torques_from_forces(zero)
        basis = np.empty((len(groups), self.nb_q))
        for row, muscles in enumerate(groups):
            forces = zero.copy()
            forces[muscles] += activations[muscles] * (full - zero)[muscles]
            basis[row] = self.torques_from_forces(forces) - passive
        return passive, basis
