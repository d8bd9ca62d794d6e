"""Calibration of the EMG-to-torque gains: least squares over a window of frames so that the
muscle torque matches the inverse-dynamics torque on chosen DoFs.

At a pose and velocity the muscle torque is passive + sum over channels of gain * (torque of
that channel's muscles at its unit-gain activation): linear in the gains, so the fit is a
bounded linear least squares (scipy lsq_linear) over frames x DoFs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from biosig_ros.processing.torque_model import TorqueModel


@dataclass
class TorqueWindow:
    """Frames kept for a calibration (rows = frames)."""

    q: np.ndarray                    # frames x nq
    muscle_qdot: np.ndarray          # frames x nq: the velocity of the muscle torque
    channel_activations: np.ndarray  # frames x channels, unit gain
    inverse_dynamics: np.ndarray     # frames x nq
    muscle: np.ndarray               # frames x nq, as estimated with the gains in force


@dataclass
class CalibrationResult:
    gains: np.ndarray
    rmse_before: float
    rmse_after: float
    r2_before: float
    r2_after: float
    frames: int
    dofs: list[str]

    def notes(self) -> dict:
        return dict(frames=self.frames, dofs=list(self.dofs),
                    rmse_before=round(self.rmse_before, 6), rmse_after=round(self.rmse_after, 6),
                    r2_before=round(self.r2_before, 6), r2_after=round(self.r2_after, 6))


def fit_quality(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(RMSE, R^2) pooled over the columns; R^2 against each column's own mean."""
    residual = predicted - target
    rmse = float(np.sqrt(np.mean(residual ** 2)))
    total = float(np.sum((target - target.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else float("nan")
    return rmse, r2


def dof_indices(model: TorqueModel, names) -> list[int]:
    unknown = [n for n in names if n not in model.dof_names]
    if unknown or not names:
        raise ValueError(f"calibration DoFs {unknown or '[]'} are not DoFs of the model "
                         f"(it has: {', '.join(model.dof_names)})")
    return [model.dof_names.index(n) for n in names]


def calibrate_gains(model: TorqueModel, groups: list[np.ndarray], window: TorqueWindow,
                    dof_names, bounds: tuple[float, float] = (0.0, 20.0)) -> CalibrationResult:
    """Gains per channel (groups[c]: its muscle indices) fitting the window's inverse dynamics
    on dof_names. Channels without muscles keep gain 0 (they cannot be fitted)."""
    dofs = dof_indices(model, dof_names)
    frames = len(window.q)
    if frames < 2:
        raise ValueError(f"{frames} frame(s) in the window: too few to calibrate")
    channels = len(groups)
    design = np.empty((frames, len(dofs), channels))
    passive = np.empty((frames, len(dofs)))
    activations = np.zeros(len(model.muscle_names))
    for k in range(frames):
        activations[:] = 0.0
        for c, muscles in enumerate(groups):
            activations[muscles] = window.channel_activations[k, c]
        p, basis = model.muscle_basis(groups, activations, window.q[k], window.muscle_qdot[k])
        passive[k] = p[dofs]
        design[k] = basis[:, dofs].T
    target = window.inverse_dynamics[:, dofs]
    fitted = np.array([len(m) > 0 and np.any(design[:, :, c]) for c, m in enumerate(groups)])
    gains = np.zeros(channels)
    if fitted.any():
        a = design[:, :, fitted].reshape(frames * len(dofs), int(fitted.sum()))
        b = (target - passive).reshape(-1)
        gains[fitted] = lsq_linear(a, b, bounds=bounds).x
    predicted = passive + np.einsum("fdc,c->fd", design, gains)
    rmse_before, r2_before = fit_quality(window.muscle[:, dofs], target)
    rmse_after, r2_after = fit_quality(predicted, target)
    return CalibrationResult(gains, rmse_before, rmse_after, r2_before, r2_after, frames,
                             list(dof_names))
