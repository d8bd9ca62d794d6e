"""Streaming joint-torque estimation: EMG envelope + IK pose -> muscle and inverse-dynamics
joint torques, one frame at a time, cost independent of history.

Per pose frame (step):
- excitation per channel = envelope as a fraction of MVC, clipped to [0, 1];
- first-order activation dynamics per channel (time constant activation_time_s when rising,
  deactivation_time_s when falling; exact for a constant excitation over the frame);
- muscle activation = clip(gain of its channel * channel activation, 0, 1); muscles no channel
  drives stay at 0 (listed by describe());
- muscle torque: biorbd muscularJointTorque at IK's pose and velocity;
- inverse dynamics: biorbd InverseDynamics at the same pose, with velocity and acceleration from
  a streaming differentiator (backward difference, each followed by a Butterworth low-pass).
The dynamics are homogeneous in the excitation, so a gain on the activation equals one on the
excitation while nothing saturates: the calibration fits gains linearly (torque_calibration).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from biosig_ros.errors import ConfigError
from biosig_ros.processing.ik_model import wrapped_step
from biosig_ros.processing.torque_channel_map import ChannelMap
from biosig_ros.processing.torque_model import TorqueModel
from biosig_ros.settings import doc_field


@dataclass
class TorqueSettings:
    model_path: str = doc_field("data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod",
                                "biorbd model with muscles (.bioMod), the one IK uses")
    channel_map_file: str = doc_field(
        "config/torque_channel_map_abd.yaml", "YAML: EMG channel -> model muscles, gains, "
        "optional MVC (see processing/torque_channel_map.py)")
    activation_time_s: float = doc_field(0.015, "activation time constant (s), rising",
                                         range=(0.0, None))
    deactivation_time_s: float = doc_field(0.05, "deactivation time constant (s), falling",
                                           range=(0.0, None))
    frame_rate: float = doc_field(100.0, "Hz of the pose stream, for the velocity filters' "
                                  "design", range=(0.0, None))
    velocity_cutoff_hz: float = doc_field(
        6.0, "low-pass cut-off after each differentiation (velocity, acceleration) for the "
        "inverse dynamics", range=(0.0, None))
    filter_order: int = doc_field(2, "Butterworth order of those low-passes", range=(1, 8))
    use_ik_velocity: bool = doc_field(
        True, "muscle torque at the pose's own velocity (IK's Kalman filter); false: at the "
        "differentiated, filtered one")
    max_gap_s: float = doc_field(0.1, "a longer gap between poses restarts the "
                                 "differentiator (flagged)", range=(0.0, None))
    calibration_dofs: list[str] = doc_field(
        ["humerus_shoulder_plane_RotX", "humerus_shoulder_ele_RotY",
         "humerus_shoulder_rotation_RotZ", "ulna_elbow_flexion_RotZ"],
        "DoFs whose torques the calibration matches")
    gain_min: float = doc_field(0.0, "lowest gain the calibration may fit", range=(0.0, None))
    gain_max: float = doc_field(20.0, "highest gain the calibration may fit", range=(0.0, None))
    calibration_smoothing_hz: float = doc_field(
        1.0, "calibration: low-pass (zero phase) of the channel activations before the fit, "
        "against the envelope's noise (see processing/torque_calibration.py); 0 = none",
        range=(0.0, None))
    force_scale_change: float = doc_field(
        0.0, "calibration: also fit each mapped muscle's active-force scale within 1 +/- this "
        "(after the gains, gains held); 0 = gains only", range=(0.0, 0.9))

    def __post_init__(self) -> None:
        for name in ("activation_time_s", "deactivation_time_s", "frame_rate",
                     "velocity_cutoff_hz", "max_gap_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"parameter '{name}' must be a number > 0, got {value!r}")
        if not self.velocity_cutoff_hz < self.frame_rate / 2:
            raise ConfigError(f"parameter 'velocity_cutoff_hz' ({self.velocity_cutoff_hz:g}) "
                              f"must be below half the frame_rate ({self.frame_rate / 2:g} Hz)")
        if not 0 <= self.calibration_smoothing_hz < self.frame_rate / 2:
            raise ConfigError("parameter 'calibration_smoothing_hz' must be >= 0 and below "
                              f"half the frame_rate ({self.frame_rate / 2:g} Hz)")
        if not 0 <= self.force_scale_change < 1:
            raise ConfigError("parameter 'force_scale_change' must be >= 0 and < 1")
        if not 0 <= self.gain_min < self.gain_max:
            raise ConfigError("parameters 'gain_min' and 'gain_max': need 0 <= gain_min < "
                              "gain_max")


class StreamingLowPass:
    """Butterworth low-pass over vectors, one sample per call (direct form II transposed)."""

    def __init__(self, order: int, cutoff_hz: float, rate_hz: float, width: int):
        self._sos = signal.butter(order, cutoff_hz, fs=rate_hz, output="sos")
        self._state = np.zeros((len(self._sos), 2, width))
        self._width = width

    def reset(self, value: np.ndarray) -> None:
        """Steady state at a constant input `value`."""
        zi = signal.sosfilt_zi(self._sos)  # per unit input
        self._state = zi[:, :, None] * np.asarray(value, dtype=float)[None, None, :]

    def step(self, x: np.ndarray) -> np.ndarray:
        for index, (b0, b1, b2, _, a1, a2) in enumerate(self._sos):
            s = self._state[index]
            y = b0 * x + s[0]
            s[0] = b1 * x - a1 * y + s[1]
            s[1] = b2 * x - a2 * y
            x = y
        return x


class StreamingDifferentiator:
    """q -> low-passed qdot and qddot (backward differences at the stamps' intervals; free
    rotations' steps modulo 2 pi: IK publishes them wrapped, and a wrap is no motion)."""

    def __init__(self, settings: TorqueSettings, width: int, free: np.ndarray | None = None):
        args = (settings.filter_order, settings.velocity_cutoff_hz, settings.frame_rate, width)
        self._velocity = StreamingLowPass(*args)
        self._acceleration = StreamingLowPass(*args)
        self._max_gap = settings.max_gap_s
        self._free = np.zeros(width, dtype=bool) if free is None else free
        self._last: tuple[float, np.ndarray, np.ndarray] | None = None  # stamp, q, qdot
        self.restarts = 0

    def step(self, stamp: float, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """(qdot, qddot, restarted): restarted when this frame began a new differentiation."""
        last = self._last
        dt = None if last is None else stamp - last[0]
        if dt is None or not (0 < dt <= self._max_gap):
            zero = np.zeros_like(q)
            self._velocity.reset(zero)
            self._acceleration.reset(zero)
            self._last = (stamp, q.copy(), zero)
            self.restarts += last is not None
            return zero, zero.copy(), True
        qdot = self._velocity.step(wrapped_step(q - last[1], self._free) / dt)
        qddot = self._acceleration.step((qdot - last[2]) / dt)
        self._last = (stamp, q.copy(), qdot)
        return qdot, qddot, False


@dataclass
class TorqueResult:
    stamp: float
    muscle: np.ndarray | None          # nq, None when no excitation was given
    inverse_dynamics: np.ndarray       # nq
    activations: np.ndarray            # per muscle
    channel_activations: np.ndarray    # per channel, gain 1 (what the calibration scales)
    qdot: np.ndarray                   # filtered, as used by the inverse dynamics
    qddot: np.ndarray
    muscle_qdot: np.ndarray            # the velocity the muscle torque was computed at
    flags: list[str] = field(default_factory=list)


class TorqueEstimator:
    """State of one stream; step() once per pose."""

    def __init__(self, settings: TorqueSettings, model: TorqueModel | None = None,
                 channel_map: ChannelMap | None = None):
        self.settings = settings
        self.model = model or TorqueModel(settings.model_path)
        self.channel_map = channel_map or ChannelMap.load(settings.channel_map_file)
        self.channel_map.check(self.model.muscle_names)
        self.unmapped_muscles = self.channel_map.unmapped(self.model.muscle_names)
        self.force_scale = self.channel_map.scales(self.model.muscle_names)
        self.differentiator = StreamingDifferentiator(settings, self.model.nb_q,
                                                      self.model.free_rotations)
        self.channel_names: list[str] = []
        self._groups: list[np.ndarray] = []
        self._gains = np.zeros(0)
        self._muscle_channel = np.zeros(0, dtype=int)
        self._mapped = np.zeros(len(self.model.muscle_names), dtype=bool)
        self._channel_activation = np.zeros(0)
        self._last_excitation_stamp: float | None = None
        self.frames = 0

    def describe(self) -> str:
        """One line for the log at start."""
        mapped = len(self.model.muscle_names) - len(self.unmapped_muscles)
        return (f"{len(self.channel_map.channels)} channels drive {mapped} of "
                f"{len(self.model.muscle_names)} muscles; unmapped (activation 0): "
                f"{', '.join(self.unmapped_muscles) or 'none'}")

    def set_channels(self, names: list[str]) -> list[str]:
        """Bind the envelope's channel order; returns notes (channels not in the map, mapped
        channels missing from the stream). Resets the activation states."""
        self.channel_names = list(names)
        notes = []
        ignored = [n for n in names if n not in self.channel_map.channels]
        missing = [n for n in self.channel_map.channels if n not in names]
        if ignored:
            notes.append(f"envelope channels not in the channel map (ignored): "
                         f"{', '.join(ignored)}")
        if missing:
            notes.append(f"mapped channels absent from the envelope (their muscles stay at "
                         f"0): {', '.join(missing)}")
        index = {m: i for i, m in enumerate(self.model.muscle_names)}
        self._groups = []
        self._muscle_channel = np.full(len(index), -1)
        for column, name in enumerate(names):
            entry = self.channel_map.channels.get(name)
            muscles = np.array([index[m] for m in entry.muscles] if entry else [], dtype=int)
            self._groups.append(muscles)
            self._muscle_channel[muscles] = column
        self._mapped = self._muscle_channel >= 0
        self._gains = np.array([self.channel_map.channels[n].gain
                                if n in self.channel_map.channels else 0.0 for n in names])
        self._channel_activation = np.zeros(len(names))
        self._last_excitation_stamp = None
        return notes

    @property
    def groups(self) -> list[np.ndarray]:
        """Per envelope channel, the indices of the muscles it drives."""
        return self._groups

    @property
    def gains(self) -> np.ndarray:
        return self._gains.copy()

    def set_gains(self, gains, force_scale=None) -> None:
        """New channel gains (and, if given, per-muscle force scales in model order)."""
        if force_scale is not None:
            force_scale = np.asarray(force_scale, dtype=float)
            if force_scale.shape != self.force_scale.shape or not np.all(force_scale > 0):
                raise ValueError(f"need {len(self.force_scale)} force scales > 0")
            self.force_scale = force_scale.copy()
        gains = np.asarray(gains, dtype=float)
        if gains.shape != self._gains.shape or not np.all(np.isfinite(gains)) or (gains < 0).any():
            raise ValueError(f"need {len(self._gains)} finite gains >= 0")
        self._gains = gains.copy()
        scales = {m: float(v) for m, v in zip(self.model.muscle_names, self.force_scale)
                  if v != 1.0}
        self.channel_map = self.channel_map.with_gains(self.channel_names, gains,
                                                       self.channel_map.notes, scales)

    def normalise(self, envelope: np.ndarray, unit: str) -> np.ndarray:
        """Envelope values (in channel order) as fractions of MVC: as given when the unit is ''
        or names MVC; divided by the map's mvc otherwise (ValueError if a channel has none)."""
        values = np.asarray(envelope, dtype=float)
        if unit == "" or "mvc" in unit.lower():
            return values
        mvc = [self.channel_map.channels[n].mvc if n in self.channel_map.channels else 1.0
               for n in self.channel_names]
        lacking = [n for n, v in zip(self.channel_names, mvc) if v is None]
        if lacking:
            raise ValueError(f"envelope in {unit!r}, not a fraction of MVC, and the channel map "
                             f"has no mvc for {', '.join(lacking)}")
        return values / np.asarray(mvc, dtype=float)

    def activate(self, stamp: float, excitation: np.ndarray) -> np.ndarray:
        """Advance the channel activations to `stamp` under this excitation (fractions)."""
        u = np.clip(np.nan_to_num(np.asarray(excitation, dtype=float)), 0.0, 1.0)
        last = self._last_excitation_stamp
        self._last_excitation_stamp = stamp
        a = self._channel_activation
        if last is None or not (0 < stamp - last <= self.settings.max_gap_s):
            if last is None or stamp - last > self.settings.max_gap_s:
                a[:] = u  # first frame or after a gap: start at the current excitation
            return a.copy()
        dt = stamp - last
        tau = np.where(u > a, self.settings.activation_time_s, self.settings.deactivation_time_s)
        a[:] = u + (a - u) * np.exp(-dt / tau)
        return a.copy()

    def muscle_activations(self, channel_activation: np.ndarray) -> np.ndarray:
        scaled = np.zeros(len(self._mapped))
        columns = self._muscle_channel[self._mapped]
        scaled[self._mapped] = self._gains[columns] * channel_activation[columns]
        return np.clip(scaled, 0.0, 1.0)

    def step(self, stamp: float, q, qdot_ik=None, excitation=None) -> TorqueResult:
        """One pose (stamp in s, q, optionally IK's velocity) with the excitation (fractions of
        MVC, envelope channel order) paired with it, or None (inverse dynamics only)."""
        q = np.asarray(q, dtype=float)
        if q.shape != (self.model.nb_q,) or not np.all(np.isfinite(q)):
            raise ValueError(f"pose must be {self.model.nb_q} finite values")
        flags = []
        qdot, qddot, restarted = self.differentiator.step(stamp, q)
        if restarted and self.frames:
            flags.append("pose gap: velocity and acceleration restarted")
        elif restarted:
            flags.append("first pose: velocity and acceleration start at 0")
        inverse = self.model.inverse_dynamics(q, qdot, qddot)
        muscle = None
        channel_activation = self._channel_activation.copy()
        activations = np.zeros(len(self.model.muscle_names))
        velocity = qdot
        if self.settings.use_ik_velocity and qdot_ik is not None and len(qdot_ik) == len(q):
            velocity = np.asarray(qdot_ik, dtype=float)
        if excitation is None:
            flags.append("no envelope paired with this pose: no muscle torque")
        else:
            channel_activation = self.activate(stamp, excitation)
            activations = self.muscle_activations(channel_activation)
            muscle = self.model.muscle_torque(activations, q, velocity, self.force_scale)
            if (activations >= 1.0).any():
                flags.append("saturated muscle activation (gain x activation > 1)")
        self.frames += 1
        return TorqueResult(stamp, muscle, inverse, activations, channel_activation, qdot,
                            qddot, velocity, flags)
