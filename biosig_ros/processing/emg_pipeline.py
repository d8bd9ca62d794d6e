"""The configured EMG chain: centring -> band-pass -> rectification -> envelope, then MVC
normalisation, chunk by chunk.

EmgPipeline is the streaming core (causal, state carried across chunks). EnvelopeStream wraps
any core with the same process() call (EmgPipeline, or biosiglive_compat.BiosigliveRealTime) for
SignalChunks: it checks the input, applies the MVC and gives the envelope the input's stamps and
running indices (divided by the decimation: output sample k is the envelope at input sample
k * D + D - 1, stamped with that sample's acquisition time). A decimation changed while the
stream runs (OutputIndex.change) continues the output indices from the last one published, so
they never go backwards.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.emg_filters import (
    BandPassSettings, LowPassSettings, check_count, check_cutoff, check_rate, mean_state,
    median_state)
from biosig_ros.processing.emg_kernels import (
    ENVELOPE_LOWPASS, ENVELOPE_MEAN, ENVELOPE_MEDIAN, ENVELOPE_NONE, ENVELOPE_RMS, emg_chain_step)
from biosig_ros.processing.mvc import check_mvc
from biosig_ros.settings import doc_field, require_choice
from biosig_ros.signals import SignalChunk

ENVELOPES = ("median", "mean", "rms", "lowpass", "none")
ENVELOPE_KINDS = {"median": ENVELOPE_MEDIAN, "mean": ENVELOPE_MEAN, "rms": ENVELOPE_RMS,
                  "lowpass": ENVELOPE_LOWPASS, "none": ENVELOPE_NONE}
WINDOWED = ("median", "mean", "rms")
NON_FINITE = "chunk contains non-finite samples (NaN or inf)"


def _doc(default, text: str, **options):
    return doc_field(default, text, **options)


@dataclass
class EmgPipelineSettings:
    """Parameters of the streaming chain (also the node's ROS parameters)."""

    sample_rate: float = _doc(2000.0, "Hz of the raw EMG (chunks at another rate are refused)",
                              range=(1.0, 1e6))
    channel_count: int = _doc(10, "channels of the raw EMG (chunks with another count are "
                              "refused); 0 = not fixed (EmgPipeline is then given the count)",
                              range=(0, 1024))
    centring: bool = _doc(False, "subtract the moving mean of the last centring_window samples "
                          "before the band-pass (an offset remover; the band-pass removes it too)")
    centring_window: int = _doc(2000, "samples of the centring mean", range=(1, 1_000_000))
    bandpass: bool = _doc(True, "Butterworth band-pass (causal, state carried across chunks)")
    bandpass_low_hz: float = _doc(10.0, "band-pass low cut-off (Hz), above 0 and below "
                                  "bandpass_high_hz", range=(0.0, 5e5))
    bandpass_high_hz: float = _doc(425.0, "band-pass high cut-off (Hz), below Nyquist "
                                   "(sample_rate / 2)", range=(0.0, 5e5))
    bandpass_order: int = _doc(5, "band-pass order (scipy's: 2 x order poles); 5 as biosiglive",
                               range=(1, 10))
    rectify: bool = _doc(True, "full-wave rectification")
    envelope: str = _doc("median", "median | mean | rms (of the last envelope_window samples) | "
                         "lowpass | none")
    envelope_window: int = _doc(200, "samples of the moving median/mean/rms (biosiglive: 200)",
                                range=(1, 1_000_000))
    lowpass_hz: float = _doc(5.0, "cut-off of the low-pass envelope (Hz), below Nyquist",
                             range=(0.0, 5e5))
    lowpass_order: int = _doc(4, "order of the low-pass envelope", range=(1, 10))
    mvc: list[float] = _doc([], "per-channel MVC (V) to normalise by, one per channel of the "
                            "stream; empty = volts out", runtime=True)

    def __post_init__(self) -> None:
        check_rate("sample_rate", self.sample_rate)
        check_count("channel_count", self.channel_count, 0)
        check_count("centring_window", self.centring_window)
        if self.bandpass:
            check_cutoff("bandpass_low_hz", self.bandpass_low_hz, self.sample_rate)
            check_cutoff("bandpass_high_hz", self.bandpass_high_hz, self.sample_rate)
            if not self.bandpass_low_hz < self.bandpass_high_hz:
                raise ConfigError(
                    f"parameter 'bandpass_low_hz' ({self.bandpass_low_hz}) must be below "
                    f"'bandpass_high_hz' ({self.bandpass_high_hz})")
            check_count("bandpass_order", self.bandpass_order, 1, 10)
        require_choice("envelope", self.envelope, ENVELOPES)
        check_count("envelope_window", self.envelope_window)
        if self.envelope == "lowpass":
            check_cutoff("lowpass_hz", self.lowpass_hz, self.sample_rate)
            check_count("lowpass_order", self.lowpass_order, 1, 10)
        if self.mvc:
            check_mvc(self.mvc, self.channel_count or len(self.mvc))


class Envelope(NamedTuple):
    """What a core makes of one chunk: the chunk positions that have an output sample, their
    values (positions x channels, not normalised), the output decimation (input samples per
    output sample) and the output index of the first value."""

    positions: np.ndarray
    values: np.ndarray
    decimation: int
    first_index: int


@dataclass
class OutputIndex:
    """Which input samples give an output sample, and its index: input sample j is output
    sample base + (j - origin) // decimation when (j - origin + 1) % decimation == 0. A new
    decimation starts at the next input sample and continues from the last output index."""

    decimation: int = 1
    origin: int = 0
    base: int = 0
    last: int = field(default=-1)

    def change(self, decimation: int, next_input: int) -> None:
        check_count("decimation", decimation)
        if decimation != self.decimation:
            self.decimation, self.origin, self.base = decimation, next_input, self.last + 1

    def restart(self) -> None:
        """The input started again: output indices follow its indices afresh."""
        self.origin, self.base, self.last = 0, 0, -1

    def first_position(self, first_input: int) -> int:
        return (self.origin - first_input - 1) % self.decimation

    def output(self, input_index: int) -> int:
        return self.base + (input_index - self.origin) // self.decimation


class EnvelopeCore(Protocol):
    channel_count: int

    def process(self, data: np.ndarray, first_index: int) -> Envelope:
        """ValueError, with the state untouched, for a non-finite sample."""

    def reset(self) -> None: ...


class EmgPipeline:
    """The streaming chain. process() takes samples x channels (V) and gives the envelope at
    every `decimation`-th sample of the stream (indices D-1, 2D-1, ...; see OutputIndex), not
    normalised. `channels` overrides settings.channel_count (needed when that is 0).

    The stages' settings, checks and state are those of emg_filters' classes; a chunk runs
    through all of them in one compiled call (emg_kernels.emg_chain_step), straight from the
    samples x channels layout in which chunks arrive.
    """

    def __init__(self, settings: EmgPipelineSettings, decimation: int = 1,
                 channels: int | None = None, index: OutputIndex | None = None):
        check_count("decimation", decimation)
        check_count("channels", channels or settings.channel_count)
        self.settings = s = settings
        self.channel_count = ch = channels or s.channel_count
        real_index = index if index is not None else OutputIndex(decimation)
        self.index = OutputIndex()  # the warm-up call below must not move the real one
        self._positions: dict[tuple[int, int, int], np.ndarray] = {}
        self._envelope = ENVELOPE_KINDS[s.envelope]
        self._bandpass_sos = BandPassSettings(
            s.sample_rate, s.bandpass_low_hz, s.bandpass_high_hz, s.bandpass_order).sos() \
            if s.bandpass else np.zeros((0, 6))
        self._lowpass_sos = LowPassSettings(s.sample_rate, s.lowpass_hz, s.lowpass_order).sos() \
            if s.envelope == "lowpass" else np.zeros((0, 6))
        self.reset()
        self.process(np.zeros((1, ch)))  # compiles or loads the kernel now, not on live data
        self.reset()
        self.index = real_index

    @property
    def decimation(self) -> int:
        return self.index.decimation

    def reset(self) -> None:
        s, ch = self.settings, self.channel_count
        # Stages that are off get empty (or one-sample) state of the same types: one kernel.
        self._centring = mean_state(s.centring_window if s.centring else 0, ch)
        self._bandpass_zi = np.zeros((ch, self._bandpass_sos.shape[0], 2))
        self._median = median_state(s.envelope_window if s.envelope == "median" else 1, ch)
        self._mean = mean_state(s.envelope_window if s.envelope in ("mean", "rms") else 1, ch)
        self._lowpass_zi = np.zeros((ch, self._lowpass_sos.shape[0], 2))
        self._seen = 0
        self.index.restart()

    def process(self, data: np.ndarray, first_index: int = 0) -> Envelope:
        """Raises ValueError, with the state untouched, if a sample is not finite."""
        samples = np.ascontiguousarray(data, dtype=np.float64).reshape(-1)
        n = len(samples) // self.channel_count
        index = self.index
        d = index.decimation
        key = (n, index.first_position(first_index), d)
        positions = self._positions.get(key)
        if positions is None:
            if len(self._positions) > 64:  # chunks of ever-changing lengths
                self._positions.clear()
            positions = self._positions[key] = np.arange(key[1], n, d)
        values = np.empty((len(positions), self.channel_count))
        if not emg_chain_step(samples, self.channel_count, self._seen, positions, values,
                              *self._centring, self._bandpass_sos, self._bandpass_zi,
                              self.settings.rectify, self._envelope, *self._median, *self._mean,
                              self._lowpass_sos, self._lowpass_zi):
            raise ValueError(NON_FINITE)
        self._seen += n
        first = index.output(first_index + int(positions[0])) if len(positions) else index.last + 1
        index.last = first + len(positions) - 1
        return Envelope(positions, values, d, first)


def check_shape(data: np.ndarray, channel_count: int) -> None:
    if data.ndim != 2 or data.shape[1] != channel_count:
        raise ValueError(f"chunk of shape {data.shape}, expected samples x {channel_count}")


def refuse_non_finite(data: np.ndarray) -> None:
    """A NaN or inf would poison a filter's state for good: ValueError."""
    # A sum is finite iff every sample is (volts never overflow it): one pass, no temporary.
    if not math.isfinite(data.sum()):
        raise ValueError(NON_FINITE)


class EnvelopeStream:
    """A core + MVC normalisation, SignalChunk in, SignalChunk out (None when the chunk yields
    no output sample: decimation, or a core that is still filling its window)."""

    def __init__(self, core: EnvelopeCore, sample_rate: float, mvc: list[float] | None = None):
        self.core = core
        self.sample_rate = float(sample_rate)
        self._mvc: np.ndarray | None = None
        self.set_mvc(mvc)

    @property
    def mvc(self) -> np.ndarray | None:
        return self._mvc

    def set_mvc(self, mvc) -> None:
        """Per-channel MVC (V) to divide the envelope by; None or empty = no normalisation."""
        if mvc is None or len(mvc) == 0:
            self._mvc = None
        else:
            self._mvc = check_mvc(mvc, self.core.channel_count)

    def reset(self) -> None:
        self.core.reset()

    def step(self, chunk: SignalChunk) -> tuple[SignalChunk | None, np.ndarray]:
        """Returns (the output chunk or None, the envelope before normalisation)."""
        if abs(chunk.sample_rate - self.sample_rate) > 1e-6 * self.sample_rate:
            raise ValueError(f"chunk at {chunk.sample_rate:g} Hz, expected {self.sample_rate:g} Hz")
        check_shape(chunk.data, self.core.channel_count)
        result = self.core.process(chunk.data, chunk.first_sample_index)
        if len(result.positions) == 0:
            return None, result.values
        mvc = self._mvc
        values = result.values if mvc is None else result.values / mvc
        first = int(result.positions[0])
        d = result.decimation
        out = SignalChunk(
            data=values,
            first_sample_index=result.first_index,
            stamp=chunk.stamp + first / self.sample_rate,
            sample_rate=self.sample_rate / d,
            channel_names=chunk.channel_names,
            unit=chunk.unit if mvc is None else "",
        )
        return out, result.values
