"""Calibration of the EMG-to-torque gains: least squares over a window of frames so that the
muscle torque matches the inverse-dynamics torque on chosen DoFs.

At a pose and velocity the muscle torque is passive + sum over channels of gain * (torque of
that channel's muscles at its unit-gain activation): linear in the gains, so the fit is a
bounded linear least squares (scipy lsq_linear) over frames x DoFs. Optionally a second stage
fits each mapped muscle's active-force scale within 1 +/- force_scale_change, gains held (the
torque is linear in those too); a channel's gain and its muscles' scales multiply, so only
their products are determined: the bounds keep the scales near 1.

The channel activations come from EMG envelopes, whose noise (about 10 % of the level for a
7 Hz envelope) sits in the regressors: least squares then shrinks and shuffles the gains of
agonist/antagonist channels, whose torques nearly cancel (on the synthetic trials of
torque_forward, up to 56 % off with the 7 Hz envelope). With smoothing_hz > 0 the activations
are low-passed forward and backward (no lag: the window is already recorded) before the fit;
the figures before and after are computed on the unsmoothed activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal
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
    force_scale: np.ndarray  # per model muscle (1 where not fitted)
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


def smoothed_activations(activations: np.ndarray, cutoff_hz: float,
                         frame_rate: float) -> np.ndarray:
    """Channel activations low-passed forward and backward (2nd-order Butterworth); unchanged
    when cutoff_hz is 0 or the window too short for the filter's padding."""
    if cutoff_hz <= 0 or len(activations) < 30 or cutoff_hz >= frame_rate / 2:
        return activations
    sos = signal.butter(2, cutoff_hz, fs=frame_rate, output="sos")
    return np.clip(signal.sosfiltfilt(sos, activations, axis=0), 0.0, None)


MIN_CALIBRATION_FRAMES = 20


def calibrate_gains(model: TorqueModel, groups: list[np.ndarray], window: TorqueWindow,
                    dof_names, bounds: tuple[float, float] = (0.0, 20.0),
                    force_scale_change: float = 0.0,
                    force_scale: np.ndarray | None = None, smoothing_hz: float = 0.0,
                    frame_rate: float = 100.0) -> CalibrationResult:
    """Gains per channel (groups[c]: its muscle indices) fitting the window's inverse dynamics
    on dof_names. Channels without muscles keep gain 0 (they cannot be fitted). force_scale:
    the scales in force (model order) while the gains are fitted; with force_scale_change > 0
    they are then refitted within 1 +/- force_scale_change. smoothing_hz: see the module's
    docstring (frame_rate: Hz of the window's frames)."""
    dofs = dof_indices(model, dof_names)
    frames = len(window.q)
    channels = len(groups)
    # Gains from a handful of frames fit noise, and the node would apply them: a window with
    # gaps (IK skipping frames, poses left unpaired) once held 1 frame of a requested second.
    needed = max(MIN_CALIBRATION_FRAMES, 2 * channels)
    if frames < needed:
        raise ValueError(f"{frames} paired frame(s) in the window: too few to calibrate (at "
                         f"least {needed}; ask for a longer duration, or see why frames are "
                         "missing on /diagnostics)")
    unit = np.empty((frames, len(dofs), channels))  # each channel's torque per unit activation
    passive = np.empty((frames, len(dofs)))
    activations = np.zeros(len(model.muscle_names))
    scale = np.ones(len(model.muscle_names)) if force_scale is None else np.asarray(force_scale)
    for c, muscles in enumerate(groups):
        activations[muscles] = scale[muscles]
    for k in range(frames):  # the force is linear in the activation: unit columns suffice
        p, basis = model.muscle_basis(groups, activations, window.q[k], window.muscle_qdot[k])
        passive[k] = p[dofs]
        unit[k] = basis[:, dofs].T
    fitted_activations = smoothed_activations(window.channel_activations, smoothing_hz,
                                              frame_rate)
    design = unit * fitted_activations[:, None, :]
    target = window.inverse_dynamics[:, dofs]
    fitted = np.array([len(m) > 0 and np.any(design[:, :, c]) for c, m in enumerate(groups)])
    gains = np.zeros(channels)
    if fitted.any():
        a = design[:, :, fitted].reshape(frames * len(dofs), int(fitted.sum()))
        b = (target - passive).reshape(-1)
        gains[fitted] = lsq_linear(a, b, bounds=bounds).x
    raw_design = unit * window.channel_activations[:, None, :]
    predicted = passive + np.einsum("fdc,c->fd", raw_design, gains)
    if force_scale_change > 0:
        smoothed = TorqueWindow(window.q, window.muscle_qdot, fitted_activations,
                                window.inverse_dynamics, window.muscle)
        scale = _fit_force_scale(model, groups, smoothed, dofs, gains, target,
                                 force_scale_change)
        predicted = _predict(model, groups, window, dofs, gains, scale)
    rmse_before, r2_before = fit_quality(window.muscle[:, dofs], target)
    rmse_after, r2_after = fit_quality(predicted, target)
    return CalibrationResult(gains, scale.copy(), rmse_before, rmse_after, r2_before, r2_after,
                             frames, list(dof_names))


def _predict(model, groups, window, dofs, gains, scale) -> np.ndarray:
    """The muscle torque on dofs of the window's frames with these gains and force scales."""
    activations = np.zeros(len(model.muscle_names))
    predicted = np.empty((len(window.q), len(dofs)))
    for k in range(len(window.q)):
        for c, muscles in enumerate(groups):
            activations[muscles] = min(1.0, gains[c] * window.channel_activations[k, c])
        predicted[k] = model.muscle_torque(activations, window.q[k], window.muscle_qdot[k],
                                           scale)[dofs]
    return predicted


def _fit_force_scale(model, groups, window, dofs, gains, target, change):
    """Per mapped muscle, the active-force scale in [1 - change, 1 + change], gains held
    (scales in model order)."""
    mapped = np.concatenate([m for m in groups if len(m)]).astype(int) if groups else \
        np.zeros(0, dtype=int)
    frames = len(window.q)
    design = np.empty((frames, len(dofs), len(mapped)))
    passive = np.empty((frames, len(dofs)))
    activations = np.zeros(len(model.muscle_names))
    for k in range(frames):
        activations[:] = 0.0
        for c, muscles in enumerate(groups):
            activations[muscles] = min(1.0, gains[c] * window.channel_activations[k, c])
        p, columns = model.muscle_columns(mapped, activations, window.q[k],
                                          window.muscle_qdot[k])
        passive[k] = p[dofs]
        design[k] = columns[:, dofs].T
    fit = lsq_linear(design.reshape(frames * len(dofs), len(mapped)),
                     (target - passive).reshape(-1), bounds=(1.0 - change, 1.0 + change))
    scale = np.ones(len(model.muscle_names))
    scale[mapped] = fit.x
    return scale
