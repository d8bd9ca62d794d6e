"""A biorbd musculoskeletal model for joint torques: muscle torque from activations and
inverse dynamics, every per-frame vector passed leak-free (see ik_biorbd.Aliased).

Hill-type muscle forces are linear in activation at a given pose and velocity, so the muscle
torque is passive(q, qdot) + sum over muscles of activation * active_torque(q, qdot): the
calibration uses this (muscle_basis).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.ik_biorbd import Aliased


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
        self.dof_names = tuple(n.to_string() for n in self.model.nameDof())
        self.muscle_names = tuple(n.to_string() for n in self.model.muscleNames())
        if not self.muscle_names:
            raise ConfigError(f"model {self.path} has no muscles: no muscle torque to compute")
        self._states = self.model.stateSet()
        self._q = Aliased(biorbd.GeneralizedCoordinates(self.model), self.nb_q,
                          biorbd.GeneralizedCoordinates)
        self._qdot = Aliased(biorbd.GeneralizedVelocity(self.model), self.nb_q,
                             biorbd.GeneralizedVelocity)
        self._qddot = Aliased(biorbd.GeneralizedAcceleration(self.model), self.nb_q,
                              biorbd.GeneralizedAcceleration)
        self._activations = np.full(len(self.muscle_names), np.nan)

    @property
    def leak_free(self) -> bool:
        return all(v.leak_free for v in (self._q, self._qdot, self._qddot))

    def _set_activations(self, activations: np.ndarray) -> None:
        # setActivation costs a Python call per muscle: skip the unchanged ones.
        for index in np.flatnonzero(activations != self._activations):
            self._states[index].setActivation(float(activations[index]))
        self._activations[:] = activations

    def muscle_torque(self, activations: np.ndarray, q: np.ndarray,
                      qdot: np.ndarray) -> np.ndarray:
        """Joint torque (N.m or N per DoF) of the muscles at these activations (0..1)."""
        self._set_activations(np.asarray(activations, dtype=float))
        torque = self.model.muscularJointTorque(self._states, self._q.set(q), self._qdot.set(qdot))
        return np.asarray(torque.to_array(), dtype=float)

    def inverse_dynamics(self, q: np.ndarray, qdot: np.ndarray, qddot: np.ndarray) -> np.ndarray:
        """Net joint torque that produces this motion (no external forces)."""
        torque = self.model.InverseDynamics(self._q.set(q), self._qdot.set(qdot),
                                            self._qddot.set(qddot))
        return np.asarray(torque.to_array(), dtype=float)

    def muscle_basis(self, groups: list[np.ndarray], activations: np.ndarray, q: np.ndarray,
                     qdot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passive torque, groups x nq active torques): each group's muscles at the given
        activations, the others at zero, minus the passive torque."""
        zero = np.zeros(len(self.muscle_names))
        passive = self.muscle_torque(zero, q, qdot)
        basis = np.empty((len(groups), self.nb_q))
        for row, muscles in enumerate(groups):
            active = zero.copy()
            active[muscles] = activations[muscles]
            basis[row] = self.muscle_torque(active, q, qdot) - passive
        return passive, basis
