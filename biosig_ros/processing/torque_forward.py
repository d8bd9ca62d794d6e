"""Synthetic torque trials with forward motion, from the model itself: known excitations drive
the muscles, the muscle torque moves the arm (forward dynamics), the arm moves the markers,
and the excitations make the EMG. Every truth the torque chain should recover is known.

The trial (forward_trial):
- DoFs in `free_dofs` move; every other DoF stays at `neutral` (velocity and acceleration 0),
  so the motion obeys M_ff qddot_f + h_f = tau_f: biorbd's mass matrix and nonlinear effects
  (gravity, Coriolis) restricted to the free DoFs.
- The only torque on the free DoFs is the muscles' (biorbd Hill-type, the estimator's
  TorqueModel): no damper, spring or joint limit, so the net (inverse-dynamics) torque equals
  the muscle torque there, and a calibration of muscle against inverse dynamics has an exact
  answer (the true gains). Open-loop activations would let gravity drop the arm out of range,
  so the excitations come from a controller that acts through the muscles only: every
  `1 / control_rate` s it asks for the torque that tracks a smooth desired motion (PD on the
  error, computed torque) and picks the channel activations giving it by bounded least
  squares, within [activation_min, min(1, 1 / gain)] (no muscle saturates), pulled by
  `pattern_weight` toward a smooth co-contraction pattern (which keeps the channels varying
  independently, for the calibration). Those activations are the excitations (held between
  ticks); the muscles follow them through the estimator's first-order activation dynamics.
- Integration: semi-implicit Euler at the EMG rate (2 kHz by default).
- EMG per channel: excitation x a zero-mean Gaussian carrier band-limited to 20-450 Hz
  (unit standard deviation) x `emg_scale_v`. Its envelope (band-pass, rectify, low-pass) is
  the excitation x the channel's MVC, `mvc` = emg_scale_v x the mean rectified band-passed
  carrier (measured on the carrier through the processing's default band-pass).
- Truth at each pose frame: q, qdot, qddot, the muscle torque (true activations x true gains)
  and the net torque (biorbd InverseDynamics of the simulated motion).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal
from scipy.optimize import lsq_linear

from biosig_ros.processing.ik_synthetic import WU_NEUTRAL
from biosig_ros.processing.torque_channel_map import ChannelMap
from biosig_ros.processing.torque_model import TorqueModel

FREE_DOFS = ("humerus_shoulder_plane_RotX", "humerus_shoulder_ele_RotY",
             "ulna_elbow_flexion_RotZ")
# The Wu model at the IK tests' pose with the arm lower and the elbow more flexed (the
# desired motion swings around it, within the DoFs' ranges).
FORWARD_NEUTRAL = WU_NEUTRAL.copy()
FORWARD_NEUTRAL[12], FORWARD_NEUTRAL[14] = 0.6, 0.9


@dataclass
class ForwardTrialSettings:
    seconds: float = 12.0
    frame_rate: float = 100.0            # Hz of the poses (markers)
    emg_rate: float = 2000.0             # Hz of the EMG and of the integration
    control_rate: float = 200.0          # Hz of the controller's ticks
    free_dofs: tuple[str, ...] = FREE_DOFS
    neutral: np.ndarray = field(default_factory=FORWARD_NEUTRAL.copy)
    amplitude_rad: float = 0.3           # peak of the desired motion around neutral, per DoF
    motion_hz: tuple[float, float] = (0.15, 0.4)   # range of the desired motion's sines
    cocontraction: tuple[float, float] = (0.05, 0.6)  # range of the co-contraction pattern
    pattern_hz: tuple[float, float] = (0.1, 0.3)   # range of its sines
    activation_min: float = 0.02
    pattern_weight: float = 0.03         # pull toward the pattern vs tracking (relative)
    control_hz: float = 3.0              # natural frequency of the tracking (PD) loop
    activation_time_s: float = 0.015     # the estimator's defaults
    deactivation_time_s: float = 0.05
    emg_scale_v: float = 2e-4            # carrier scale (V) of channel 0; channel c: x (1 + c / 4)
    seed: int = 0


@dataclass
class ForwardTrial:
    settings: ForwardTrialSettings
    channel_names: list[str]
    gains: np.ndarray            # true channel gains
    dof_names: tuple[str, ...]
    free: np.ndarray             # indices of the free DoFs
    stamps: np.ndarray           # s from the start, one per pose frame
    q: np.ndarray                # frames x nq
    qdot: np.ndarray
    qddot: np.ndarray
    muscle_torque: np.ndarray    # frames x nq: true activations x true gains at the true pose
    net_torque: np.ndarray       # frames x nq: inverse dynamics of the simulated motion
    activation: np.ndarray       # frames x channels, unit gain
    excitation: np.ndarray       # EMG samples x channels (fractions of MVC)
    emg: np.ndarray              # EMG samples x channels, V
    mvc: np.ndarray              # per channel, V: the envelope at full excitation
    desired_q: np.ndarray        # frames x free DoFs: what the controller tracked


def _sines(rng, count: int, hz: tuple[float, float]):
    """Two incommensurate sines per column, weights 0.6 and 0.4: t -> values in [-1, 1]."""
    f1, f2 = rng.uniform(*hz, count), rng.uniform(*hz, count)
    p1, p2 = rng.uniform(0, 2 * np.pi, (2, count))

    def value(t):
        return 0.6 * np.sin(2 * np.pi * f1 * t + p1) + 0.4 * np.sin(2 * np.pi * f2 * t + p2)

    def rate(t):  # first and second derivatives
        w1, w2 = 2 * np.pi * f1, 2 * np.pi * f2
        first = 0.6 * w1 * np.cos(w1 * t + p1) + 0.4 * w2 * np.cos(w2 * t + p2)
        second = -0.6 * w1 ** 2 * np.sin(w1 * t + p1) - 0.4 * w2 ** 2 * np.sin(w2 * t + p2)
        return first, second

    return value, rate


def carrier_mvc(rate: float, low_hz: float = 10.0, high_hz: float = 425.0, order: int = 5,
                seconds: float = 60.0, seed: int = 12345) -> float:
    """Mean of the rectified band-passed unit carrier (the envelope at full excitation)."""
    carrier = emg_carrier(np.random.default_rng(seed), int(seconds * rate), 1, rate)
    band = signal.sosfilt(signal.butter(order, [low_hz, high_hz], "bandpass", fs=rate,
                                        output="sos"), carrier[:, 0])
    return float(np.mean(np.abs(band[int(rate):])))  # after the filter's first second


def emg_carrier(rng, samples: int, channels: int, rate: float) -> np.ndarray:
    """Zero-mean Gaussian noise band-limited to 20-450 Hz, unit standard deviation."""
    sos = signal.butter(4, [20.0, min(450.0, 0.45 * rate)], "bandpass", fs=rate, output="sos")
    warm = int(rate)  # drop the filter's start
    noise = signal.sosfilt(sos, rng.standard_normal((samples + warm, channels)), axis=0)[warm:]
    return noise / noise.std(axis=0)


def channel_groups(model: TorqueModel, channel_map: ChannelMap, names) -> list[np.ndarray]:
    index = {m: i for i, m in enumerate(model.muscle_names)}
    return [np.array([index[m] for m in channel_map.channels[n].muscles], dtype=int)
            for n in names]


def forward_trial(model: TorqueModel, channel_map: ChannelMap, gains=None,
                  settings: ForwardTrialSettings | None = None) -> ForwardTrial:
    """Simulate a trial (see the module docstring). gains: true gain per channel of the map
    (default: the map's)."""
    s = settings or ForwardTrialSettings()
    names = list(channel_map.channels)
    groups = channel_groups(model, channel_map, names)
    gains = channel_map.gains(names) if gains is None else np.asarray(gains, dtype=float)
    free = np.array([model.dof_names.index(n) for n in s.free_dofs])
    rng = np.random.default_rng(s.seed)
    desired, desired_rate = _sines(rng, len(free), s.motion_hz)
    pattern, _ = _sines(rng, len(names), s.pattern_hz)
    ceiling = np.minimum(1.0, 1.0 / np.maximum(gains, 1e-9))
    kp, kd = (2 * np.pi * s.control_hz) ** 2, 2 * 0.9 * 2 * np.pi * s.control_hz
    muscle_gain = np.zeros(len(model.muscle_names))
    for c, muscles in enumerate(groups):
        muscle_gain[muscles] = gains[c]

    dt = 1.0 / s.emg_rate
    samples = int(round(s.seconds * s.emg_rate))
    per_frame = int(round(s.emg_rate / s.frame_rate))
    per_tick = int(round(s.emg_rate / s.control_rate))
    frames = samples // per_frame
    q = s.neutral.astype(float).copy()
    q[free] += s.amplitude_rad * desired(0.0)
    qdot = np.zeros_like(q)
    qdot[free] = s.amplitude_rad * desired_rate(0.0)[0]
    # Start in balance: the activations the controller asks for at the start (no jolt).
    u = _control(model, groups, muscle_gain, q, qdot, free, 0.0, s, desired, desired_rate,
                 pattern, kp, kd, ceiling)
    a = u.copy()
    excitation = np.empty((samples, len(names)))
    out = {k: np.empty((frames, len(q))) for k in ("q", "qdot", "qddot", "muscle", "net")}
    activation = np.empty((frames, len(names)))
    desired_q = np.empty((frames, len(free)))
    for n in range(samples):
        t = n * dt
        if n % per_tick == 0:
            u = _control(model, groups, muscle_gain, q, qdot, free, t, s, desired,
                         desired_rate, pattern, kp, kd, ceiling)
        excitation[n] = u
        tau = np.where(u > a, s.activation_time_s, s.deactivation_time_s)
        a = u + (a - u) * np.exp(-dt / tau)
        torque = model.muscle_torque(np.clip(muscle_gain * _per_muscle(groups, a, model), 0, 1),
                                     q, qdot)
        qddot = np.zeros_like(q)
        qddot[free] = _free_acceleration(model, q, qdot, torque, free)
        if n % per_frame == 0 and n // per_frame < frames:
            k = n // per_frame
            out["q"][k], out["qdot"][k], out["qddot"][k] = q, qdot, qddot
            out["muscle"][k] = torque
            out["net"][k] = model.inverse_dynamics(q, qdot, qddot)
            activation[k] = a
            desired_q[k] = s.neutral[free] + s.amplitude_rad * desired(t)
        qdot = qdot + qddot * dt
        q = q + qdot * dt  # semi-implicit Euler: the new velocity moves the pose
    carrier = emg_carrier(rng, samples, len(names), s.emg_rate)
    scale = s.emg_scale_v * (1.0 + np.arange(len(names)) / 4.0)
    emg = excitation * carrier * scale
    mvc = scale * carrier_mvc(s.emg_rate)
    return ForwardTrial(s, names, gains, model.dof_names, free,
                        np.arange(frames) / s.frame_rate, out["q"], out["qdot"], out["qddot"],
                        out["muscle"], out["net"], activation, excitation, emg, mvc, desired_q)


def marker_trajectories(model_path, q: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(frames x markers x 3 in metres, names): the model's technical markers at each pose."""
    from biosig_ros.processing.ik_model import load_model

    ik_model = load_model(model_path)
    return np.stack([ik_model.markers(qi) for qi in q]), list(ik_model.marker_names)


def write_bio(path, trial: ForwardTrial, markers: np.ndarray) -> None:
    """The trial as a biosiglive .bio recording: 'emg' channels x samples (V), 'markers'
    3 x markers x frames (m). The replay needs its names and rates as parameters
    (replay_parameters)."""
    from biosig_ros.io.bio_file import BioWriter

    with BioWriter(path) as writer:
        writer.append({"emg": np.ascontiguousarray(trial.emg.T),
                       "markers": np.ascontiguousarray(np.transpose(markers, (2, 1, 0)))})


def replay_parameters(path, trial: ForwardTrial, marker_names, model_path) -> dict:
    """replay_node parameters that play write_bio's file once."""
    return {"file": str(path), "model_path": str(model_path), "signal_key": "emg",
            "sample_rate": trial.settings.emg_rate, "signal_unit": "V",
            "channel_names": list(trial.channel_names), "markers_key": "markers",
            "frame_rate": trial.settings.frame_rate, "marker_unit": "m",
            "marker_names": list(marker_names), "loop": False}


def _per_muscle(groups, channel_values: np.ndarray, model: TorqueModel) -> np.ndarray:
    values = np.zeros(len(model.muscle_names))
    for c, muscles in enumerate(groups):
        values[muscles] = channel_values[c]
    return values


def _free_acceleration(model: TorqueModel, q, qdot, torque, free) -> np.ndarray:
    """qddot of the free DoFs under `torque`, the others held (qddot 0)."""
    bias = model.inverse_dynamics(q, qdot, np.zeros_like(q))  # gravity and Coriolis
    mass = model.mass_matrix(q)[np.ix_(free, free)]
    return np.linalg.solve(mass, torque[free] - bias[free])


def _control(model, groups, muscle_gain, q, qdot, free, t, s, desired, desired_rate, pattern,
             kp, kd, ceiling) -> np.ndarray:
    """Channel activations giving the computed torque that tracks the desired motion: bounded
    least squares, pulled toward the co-contraction pattern."""
    first, second = desired_rate(t)
    target_q = s.neutral[free] + s.amplitude_rad * desired(t)
    wanted = s.amplitude_rad * second + kp * (target_q - q[free]) + kd * (
        s.amplitude_rad * first - qdot[free])
    bias = model.inverse_dynamics(q, qdot, np.zeros_like(q))
    mass = model.mass_matrix(q)[np.ix_(free, free)]
    needed = mass @ wanted + bias[free]
    low, high = s.cocontraction
    reference = low + (high - low) * (0.5 + 0.5 * pattern(t))
    passive, basis = model.muscle_basis(groups, muscle_gain, q, qdot)  # per unit activation
    columns = basis[:, free].T  # free DoFs x channels
    # Each channel pulled toward its pattern in proportion to its torque per activation:
    # a strong muscle is not left at its floor while weak ones do the work.
    weight = np.diag(np.sqrt(s.pattern_weight) * (np.linalg.norm(columns, axis=0) + 1e-3))
    fit = lsq_linear(np.vstack([columns, weight]),
                     np.concatenate([needed - passive[free], weight @ reference]),
                     bounds=(s.activation_min, ceiling))
    return fit.x
