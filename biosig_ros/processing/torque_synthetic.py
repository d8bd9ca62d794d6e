"""Synthetic torque trials from the model itself: known motion (multi-sine around the IK
tests' neutral pose, exact velocity and acceleration) and known channel excitations; the truth
(activations, muscle torque) is integrated at a finer step than the estimator sees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biosig_ros.processing.ik_synthetic import WU_AMPLITUDE, WU_NEUTRAL
from biosig_ros.processing.torque_model import TorqueModel


@dataclass
class TorqueTrial:
    stamps: np.ndarray        # frames
    q: np.ndarray             # frames x nq
    qdot: np.ndarray
    qddot: np.ndarray
    excitation: np.ndarray    # frames x channels, fractions of MVC
    activation: np.ndarray    # frames x channels, true channel activations (unit gain)


def synthetic_trial(channels: int, seconds: float = 5.0, frame_rate: float = 100.0,
                    seed: int = 0, activation_time_s: float = 0.015,
                    deactivation_time_s: float = 0.05, substeps: int = 20) -> TorqueTrial:
    rng = np.random.default_rng(seed)
    nq = len(WU_NEUTRAL)
    frames = int(round(seconds * frame_rate))
    t = np.arange(frames) / frame_rate
    w = 2 * np.pi * rng.uniform(0.2, 0.6, nq)
    phase = rng.uniform(0, 2 * np.pi, nq)
    amplitude = 0.5 * WU_AMPLITUDE
    arg = np.outer(t, w) + phase
    q = WU_NEUTRAL + amplitude * np.sin(arg)
    qdot = amplitude * w * np.cos(arg)
    qddot = -amplitude * w ** 2 * np.sin(arg)
    # Excitations: smooth bursts between 0.05 and 0.6, one frequency per channel.
    f = rng.uniform(0.3, 1.0, channels)
    p = rng.uniform(0, 2 * np.pi, channels)

    def excite(time):
        return 0.05 + 0.55 * (0.5 + 0.5 * np.sin(2 * np.pi * f * time + p)) ** 2

    excitation = np.array([excite(ti) for ti in t])
    activation = np.empty_like(excitation)
    a = excitation[0].copy()
    dt = 1.0 / (frame_rate * substeps)
    for k, ti in enumerate(t):
        if k:
            for s in range(substeps):  # fine steps with the excitation changing within them
                u = excite(ti - 1.0 / frame_rate + (s + 1) * dt)
                tau = np.where(u > a, activation_time_s, deactivation_time_s)
                a = u + (a - u) * np.exp(-dt / tau)
        activation[k] = a
    return TorqueTrial(t, q, qdot, qddot, excitation, activation)


def true_muscle_torque(model: TorqueModel, groups: list[np.ndarray], gains: np.ndarray,
                       trial: TorqueTrial) -> np.ndarray:
    """frames x nq muscle torque of the trial's true activations scaled by the true gains."""
    torques = np.empty_like(trial.q)
    activations = np.zeros(len(model.muscle_names))
    for k in range(len(trial.q)):
        for c, muscles in enumerate(groups):
            activations[muscles] = min(1.0, gains[c] * trial.activation[k, c])
        torques[k] = model.muscle_torque(activations, trial.q[k], trial.qdot[k])
    return torques
