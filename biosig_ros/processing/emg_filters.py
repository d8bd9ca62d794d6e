"""Streaming EMG filter stages: the state carries across chunks, the cost of a chunk does not
depend on how long the stream has run.

Every stage works on channel-major blocks: x has shape (channels, samples), float64, C-contiguous
(the layout in which scipy's SOS kernel filters in place). A stage is built from a settings
dataclass (checked in __post_init__, ConfigError naming the parameter), holds its own state and
has one call, step(x) -> y, which may reuse x's memory. reset() returns to the initial state.
Feeding a signal chunk by chunk gives the same samples as filtering the whole signal at once
(see test/test_emg_filters.py). The moving windows run compiled per-sample functions
(emg_kernels), which emg_pipeline.EmgPipeline also runs, all stages fused in one call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.emg_kernels import (  # noqa: F401 - the states, re-exported
    mean_state, median_state, moving_mean_step, moving_median_step)
from biosig_ros.processing.filter_design import butter_sos

MAX_BUTTER_ORDER = 10


def check_rate(name: str, rate: float) -> None:
    if not (isinstance(rate, (int, float)) and np.isfinite(rate) and rate > 0):
        raise ConfigError(f"parameter '{name}' must be a positive number of Hz, got {rate!r}")


def check_cutoff(name: str, hz: float, rate: float) -> None:
    """A digital filter's cut-off must lie strictly between 0 and the Nyquist frequency."""
    if not (isinstance(hz, (int, float)) and np.isfinite(hz) and 0 < hz < rate / 2):
        raise ConfigError(f"parameter '{name}' = {hz!r} Hz must be above 0 and below the Nyquist "
                          f"frequency ({rate / 2:g} Hz at {rate:g} Hz)")


def check_count(name: str, value: int, minimum: int = 1, maximum: int | None = None) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum \
            or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(f"parameter '{name}' must be an integer of at least {minimum}{upper}, "
                          f"got {value!r}")


def _sosfilt_kernel():
    """The Cython kernel behind scipy.signal.sosfilt (same arithmetic, without ~30 us of
    checks), imported on first use: scipy.signal is slow to import (see filter_design)."""
    global _SOSFILT_KERNEL
    if _SOSFILT_KERNEL is False:
        try:
            from scipy.signal._sosfilt import _sosfilt as kernel
        except ImportError:  # pragma: no cover - a scipy that moved it: the public call does it
            kernel = None
        _SOSFILT_KERNEL = kernel
    return _SOSFILT_KERNEL


_SOSFILT_KERNEL = False  # not imported yet


def sosfilt_inplace(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    """Filter x (channels, samples; C-contiguous float64) along samples in place, continuing from
    zi (channels, sections, 2), which is updated. Bit-identical to scipy.signal.sosfilt."""
    kernel = _sosfilt_kernel()
    if kernel is not None:
        kernel(sos, x, zi)
        return
    from scipy import signal  # pragma: no cover

    y, zf = signal.sosfilt(sos, x, axis=-1, zi=zi.transpose(1, 0, 2))  # pragma: no cover
    x[...] = y  # pragma: no cover
    zi[...] = zf.transpose(1, 0, 2)  # pragma: no cover


# --- Butterworth filters ----------------------------------------------------------------------

@dataclass(frozen=True)
class BandPassSettings:
    """Butterworth band-pass: `order` is scipy's (the filter has 2 x order poles)."""

    sample_rate: float
    low_hz: float = 10.0
    high_hz: float = 425.0
    order: int = 4

    def __post_init__(self) -> None:
        check_rate("sample_rate", self.sample_rate)
        check_cutoff("low_hz", self.low_hz, self.sample_rate)
        check_cutoff("high_hz", self.high_hz, self.sample_rate)
        if not self.low_hz < self.high_hz:
            raise ConfigError(f"parameter 'low_hz' ({self.low_hz}) must be below 'high_hz' "
                              f"({self.high_hz})")
        check_count("order", self.order, 1, MAX_BUTTER_ORDER)

    def sos(self) -> np.ndarray:
        return butter_sos(self.order, [self.low_hz, self.high_hz], "bandpass", self.sample_rate)


@dataclass(frozen=True)
class LowPassSettings:
    """Butterworth low-pass of the given order."""

    sample_rate: float
    cutoff_hz: float = 5.0
    order: int = 4

    def __post_init__(self) -> None:
        check_rate("sample_rate", self.sample_rate)
        check_cutoff("cutoff_hz", self.cutoff_hz, self.sample_rate)
        check_count("order", self.order, 1, MAX_BUTTER_ORDER)

    def sos(self) -> np.ndarray:
        return butter_sos(self.order, self.cutoff_hz, "lowpass", self.sample_rate)


class SosFilter:
    """A causal IIR filter in second-order sections, starting at rest (zero state)."""

    def __init__(self, sos: np.ndarray, channels: int):
        check_count("channels", channels)
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.zi = np.zeros((channels, self.sos.shape[0], 2))

    def reset(self) -> None:
        self.zi[...] = 0.0

    def step(self, x: np.ndarray) -> np.ndarray:
        sosfilt_inplace(self.sos, x, self.zi)
        return x


class BandPass(SosFilter):
    def __init__(self, settings: BandPassSettings, channels: int):
        super().__init__(settings.sos(), channels)
        self.settings = settings


class LowPass(SosFilter):
    def __init__(self, settings: LowPassSettings, channels: int):
        super().__init__(settings.sos(), channels)
        self.settings = settings


class Rectify:
    """Full-wave rectification (absolute value), in place."""

    def reset(self) -> None:
        pass

    @staticmethod
    def step(x: np.ndarray) -> np.ndarray:
        return np.abs(x, out=x)


# --- moving windows ----------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowSettings:
    """A moving window over the last `window` samples, the current one included."""

    window: int = 200

    def __post_init__(self) -> None:
        check_count("window", self.window)


class _WindowStage:
    """What the moving windows share: settings, channels, and a state built by `make_state`
    (window, channels) with the count of samples seen."""

    make_state = staticmethod(mean_state)

    def __init__(self, settings: WindowSettings, channels: int):
        check_count("channels", channels)
        self.settings = settings
        self.window = settings.window
        self.channels = channels
        self.reset()

    def reset(self) -> None:
        self._state = self.make_state(self.window, self.channels)
        self._seen = 0


class MovingMean(_WindowStage):
    """Mean of the last `window` samples (fewer at the start of the stream), O(1) per sample: a
    running sum, recomputed exactly from the window once every `window` samples so that
    rounding does not accumulate over hours (emg_kernels)."""

    def step(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(x.shape)
        self._seen = moving_mean_step(*self._state, self._seen, x, out)
        return out


class MovingRms(MovingMean):
    """Root mean square of the last `window` samples: the square root of a moving mean of
    squares, O(1) per sample (the envelope 'rms' of emg_pipeline)."""

    def step(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        return np.sqrt(np.maximum(super().step(x * x), 0.0))


class Centring:
    """Subtracts the moving mean of the last `window` samples (an offset and drift remover)."""

    def __init__(self, settings: WindowSettings, channels: int):
        self.settings = settings
        self._mean = MovingMean(settings, channels)

    def reset(self) -> None:
        self._mean.reset()

    def step(self, x: np.ndarray) -> np.ndarray:
        mean = self._mean.step(x)
        return np.subtract(x, mean, out=x)


class MovingMedian(_WindowStage):
    """Median of the last `window` samples (fewer at the start of the stream), equal to
    numpy.median over each window, in O(log window) per sample: two heaps of the window's
    halves (emg_kernels)."""

    make_state = staticmethod(median_state)

    def step(self, x: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """Medians at the given sorted sample positions of x (all when None): (channels, k).
        x is (channels, samples), without NaN (ValueError)."""
        if positions is None:
            positions = np.arange(x.shape[1])
        out = np.empty((self.channels, len(positions)))
        seen = moving_median_step(*self._state, self._seen,
                                  np.ascontiguousarray(x, dtype=np.float64), positions, out)
        if seen < 0:
            raise ValueError("moving median: the chunk contains NaN")
        self._seen = seen
        return out
