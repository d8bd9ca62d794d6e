"""Myoelectric (EMG-proportional) assistance: per joint, torque = gain x (agonist activation -
antagonist activation), activations as fractions of MVC, with a deadband.

The envelope's channels are bound by name once per channel list (bind()); each envelope chunk
then costs a few numpy operations on its newest sample (torque()). An envelope in volts is
normalised by a per-channel MVC; without one it is refused, since a gain in N.m per volt would
silently depend on electrode placement and skin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class InputFault(ValueError):
    """The input cannot be acted on safely; the message says why (shown on /diagnostics)."""


VOLT_UNITS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6}
NORMALISED_UNITS = ("", "1", "fraction of MVC")


@dataclass(frozen=True)
class JointLaw:
    """The law of one joint: its channels, gain (N.m per unit of activation difference) and
    deadband (fraction of MVC)."""

    agonist: str
    antagonist: str  # "" = none
    gain: float
    deadband: float


class AssistLaw:
    """Activations -> torque for every joint, from the newest sample of an envelope chunk."""

    def __init__(self, joints: list[JointLaw], mvc: dict[str, float], max_activation: float):
        self.joints = joints
        self.mvc = dict(mvc)
        self.max_activation = max_activation
        self._gain = [float(j.gain) for j in joints]
        self._deadband = [float(j.deadband) for j in joints]
        self._bound: tuple | None = None  # (names, unit) the indices below were built for
        self.agonist = [0.0] * len(joints)
        self.antagonist = [0.0] * len(joints)

    def channels(self) -> list[str]:
        names = [j.agonist for j in self.joints] + [j.antagonist for j in self.joints]
        return list(dict.fromkeys(n for n in names if n))

    def bind(self, channel_names: list[str], unit: str) -> None:
        """Index the used channels in the envelope's list and set their scale to fractions of
        MVC; InputFault when a channel is missing or the unit cannot be normalised."""
        if self._bound == (channel_names, unit):
            return
        self._bound = None
        missing = [n for n in self.channels() if n not in channel_names]
        if missing:
            raise InputFault(f"envelope has no channel(s) {', '.join(missing)} "
                             f"(it has {', '.join(channel_names) or 'none'})")
        if unit in NORMALISED_UNITS:
            scale = {n: 1.0 for n in self.channels()}
        elif unit in VOLT_UNITS:
            without = [n for n in self.channels() if n not in self.mvc]
            if without:
                raise InputFault(
                    f"envelope is in {unit} and no MVC is given for {', '.join(without)}: "
                    "refusing to assist on volts (set the parameters mvc_channels/mvc or "
                    "mvc_file, or normalise in the EMG node)")
            scale = {n: VOLT_UNITS[unit] / self.mvc[n] for n in self.channels()}
        else:
            raise InputFault(f"envelope unit {unit!r} is neither volts nor a fraction of MVC")
        index = {n: i for i, n in enumerate(channel_names)}
        self._width = len(channel_names)
        self._agonist = [(index[j.agonist], scale[j.agonist]) for j in self.joints]
        # A joint without antagonist reads its agonist again, scaled by zero.
        self._antagonist = [(index[j.antagonist or j.agonist],
                             scale[j.antagonist] if j.antagonist else 0.0) for j in self.joints]
        self._used = sorted({i for i, _ in self._agonist + self._antagonist})
        # Per used column, the largest scale it is read with (an artefact in an older sample).
        scales = {i: 0.0 for i in self._used}
        for i, factor in self._agonist + self._antagonist:
            scales[i] = max(scales[i], factor)
        self._used_scale = np.array([scales[i] for i in self._used])
        self._bound = (list(channel_names), unit)

    def torque(self, data: np.ndarray) -> list[float]:
        """Torque per joint (N.m) from a samples x channels chunk (flat or 2-D) of the bound
        envelope: its newest sample. InputFault on a non-finite value or an activation above
        max_activation in any sample of the used channels.

        Python floats: for a few joints they cost a fraction of numpy's per-call overhead, and
        this runs between an envelope's arrival and the command."""
        if self._bound is None:
            raise InputFault("envelope channels not bound")
        block = np.asarray(data, dtype=float).reshape(-1, self._width)
        if len(block) > 1:
            older = block[:-1, self._used]
            if not np.isfinite(older).all():
                raise InputFault("non-finite value (NaN or inf) in the envelope")
            peak = float((np.abs(older) * self._used_scale).max())
            if peak > self.max_activation:
                raise InputFault(f"activation {peak:.3g} x MVC above max_activation "
                                 f"({self.max_activation:g}) in an older sample of the chunk: "
                                 "electrode artefact or wrong MVC?")
        row = block[-1].tolist()
        if not all(math.isfinite(row[i]) for i in self._used):
            raise InputFault("non-finite value (NaN or inf) in the envelope")
        self.agonist = [row[i] * s for i, s in self._agonist]
        self.antagonist = [row[i] * s for i, s in self._antagonist]
        peak = max(max(map(abs, self.agonist)), max(map(abs, self.antagonist)))
        if peak > self.max_activation:
            raise InputFault(f"activation {peak:.3g} x MVC above max_activation "
                             f"({self.max_activation:g}): electrode artefact or wrong MVC?")
        return [g * deadband(a - b, d) for g, a, b, d in
                zip(self._gain, self.agonist, self.antagonist, self._deadband)]


def deadband(x: float, width: float) -> float:
    """0 within +-width, and shifted towards zero by width outside (continuous: no step when
    the activation difference crosses the band)."""
    return math.copysign(max(abs(x) - width, 0.0), x)
