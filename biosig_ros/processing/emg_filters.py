"""Streaming EMG filter stages: the state carries across chunks, the cost of a chunk does not
depend on how long the stream has run.

Every stage works on channel-major blocks: x has shape (channels, samples), float64, C-contiguous
(the layout in which scipy's SOS kernel filters in place). A stage is built from a settings
dataclass (checked in __post_init__, ConfigError naming the parameter), holds its own state and
has one call, step(x) -> y, which may reuse x's memory. reset() returns to the initial state.
Feeding a signal chunk by chunk gives the same samples as filtering the whole signal at once
(see test/test_emg_filters.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from biosig_ros.errors import ConfigError

try:  # The Cython kernel behind scipy.signal.sosfilt: same arithmetic, without ~30 us of checks.
    from scipy.signal._sosfilt import _sosfilt as _SOSFILT_KERNEL
except ImportError:  # pragma: no cover - a scipy that moved it: the public call is equivalent
    _SOSFILT_KERNEL = None

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


def sosfilt_inplace(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    """Filter x (channels, samples; C-contiguous float64) along samples in place, continuing from
    zi (channels, sections, 2), which is updated. Bit-identical to scipy.signal.sosfilt."""
    if _SOSFILT_KERNEL is not None:
        _SOSFILT_KERNEL(sos, x, zi)
        return
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
        return signal.butter(self.order, [self.low_hz, self.high_hz], btype="bandpass",
                             fs=self.sample_rate, output="sos")


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
        return signal.butter(self.order, self.cutoff_hz, btype="lowpass", fs=self.sample_rate,
                             output="sos")


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


class _History:
    """The last `keep` samples of every channel, contiguous in time, with O(chunk) appends.

    extend(x) returns a view (channels, keep + n) of the `keep` samples before x followed by x.
    Samples from before the stream started read as zero. The buffer slides back to its start
    once every ~`keep` samples (amortised O(1) per sample).
    """

    def __init__(self, channels: int, keep: int):
        self.keep = keep
        self._buffer = np.zeros((channels, 2 * keep + 64))
        self._end = keep

    def reset(self) -> None:
        self._buffer[...] = 0.0
        self._end = self.keep

    def extend(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[1]
        if self._end + n > self._buffer.shape[1]:
            if self.keep + n > self._buffer.shape[1]:
                self._buffer = self._place(np.zeros((self._buffer.shape[0], 2 * (self.keep + n))))
            else:
                self._place(self._buffer)
            self._end = self.keep
        start = self._end - self.keep
        self._buffer[:, self._end:self._end + n] = x
        self._end += n
        return self._buffer[:, start:self._end]

    def last(self) -> np.ndarray:
        """A view of the last `keep` samples."""
        return self._buffer[:, self._end - self.keep:self._end]

    def _place(self, target: np.ndarray) -> np.ndarray:
        # Through a copy: the source and target ranges may overlap.
        tail = self._buffer[:, self._end - self.keep:self._end].copy()
        target[:, :self.keep] = tail
        return target


class MovingMean:
    """Mean of the last `window` samples (fewer at the start of the stream), O(chunk) per step.

    A running sum updated by cumulative sums over the chunk; it is recomputed exactly from the
    window once every `window` samples so that rounding does not accumulate over hours.
    """

    def __init__(self, settings: WindowSettings, channels: int):
        check_count("channels", channels)
        self.settings = settings
        self.window = settings.window
        self._history = _History(channels, self.window)
        self._sum = np.zeros(channels)
        self._seen = 0
        self._since_exact = 0

    def reset(self) -> None:
        self._history.reset()
        self._sum[...] = 0.0
        self._seen = 0
        self._since_exact = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[1]
        if n == 0:
            return x
        span = self._history.extend(x)
        # span[:, :n] are the samples leaving the window as x's samples enter it.
        sums = np.subtract(span[:, self.window:], span[:, :n])
        sums[:, 0] += self._sum
        np.cumsum(sums, axis=1, out=sums)
        self._since_exact += n
        if self._since_exact >= self.window:
            self._since_exact = 0
            sums[:, -1] = span[:, -self.window:].sum(axis=1)
        self._sum = sums[:, -1].copy()
        if self._seen >= self.window:
            sums /= self.window
        else:
            sums /= np.minimum(np.arange(self._seen + 1, self._seen + n + 1), self.window)
        self._seen += n
        return sums


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


class MovingMedian:
    """Median of the last `window` samples (fewer at the start of the stream).

    The window is kept sorted: an array of complex keys (value + 1j * sample index), sorted by
    value with the index riding along, so that the samples leaving the window are found by
    their index. A step of s samples (s <= 32 and below half the window; longer chunks are cut)
    drops the s oldest keys (one linear pass), merges the s new ones (one sort of two sorted
    runs: O(s log window) comparisons and a copy), and finds the median of each intermediate
    window among 2s + 2 candidates: the s + 2 middle values of the kept keys and the s samples
    not shared by all windows of the step. Nothing is re-sorted or re-selected from scratch; what
    grows with the window is two linear passes in C over the sorted keys (the drop, and the
    merge's scan and copy). The medians equal numpy.median over each window bit for bit.
    """

    MAX_STEP = 32

    def __init__(self, settings: WindowSettings, channels: int):
        check_count("channels", channels)
        self.settings = settings
        self.window = n = settings.window
        self.channels = channels
        self._ranks = ((n - 1) // 2, n // 2)
        self._max_step = min(self.MAX_STEP, (n - 1) // 2)
        self._history = _History(channels, n)
        self._keys: np.ndarray | None = None
        self._seen = 0
        self._offsets = 1j * np.arange(self._max_step, dtype=np.float64)
        self._windows: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self._history.reset()
        self._keys = None
        self._seen = 0

    def step(self, x: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """Medians at the given sorted sample positions of x (all when None): (channels, k)."""
        n = x.shape[1]
        if positions is None:
            positions = np.arange(n)
        if self._keys is not None and n <= self._max_step:  # the usual chunk: one step
            return self._step_sorted(x, positions)
        out = np.empty((self.channels, len(positions)))
        start = 0
        while start < n:
            if self._keys is None:  # until the window is full (for ever for 1 or 2 samples)
                stop = n if self._max_step == 0 else min(n, start + self.window - self._seen)
            else:
                stop = min(n, start + self._max_step)
            lo, hi = np.searchsorted(positions, [start, stop])
            piece = x[:, start:stop]
            wanted = positions[lo:hi] - start
            if self._keys is None:
                out[:, lo:hi] = self._step_direct(piece, wanted)
                if self._seen >= self.window and self._max_step > 0:
                    self._start_sorted()
            else:
                out[:, lo:hi] = self._step_sorted(piece, wanted)
            start = stop
        return out

    def _step_direct(self, piece: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """Start of the stream (growing window) and windows of 1 or 2 samples: numpy.median."""
        span = self._history.extend(piece)
        s = piece.shape[1]
        result = np.empty((self.channels, len(wanted)))
        for k, j in enumerate(wanted):
            end = span.shape[1] - s + j + 1
            count = min(self._seen + j + 1, self.window)
            result[:, k] = np.median(span[:, end - count:end], axis=1)
        self._seen += s
        return result

    def _start_sorted(self) -> None:
        times = np.arange(self._seen - self.window, self._seen, dtype=np.float64)
        self._keys = np.sort(self._history.last() + 1j * times, axis=1)
        self._spare = np.empty_like(self._keys)
        self._mask = np.empty(self._keys.shape, dtype=bool)

    def _step_sorted(self, piece: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        s = piece.shape[1]
        n = self.window
        keys = self._spare  # two key arrays used in turn: no allocation per step
        kept = keys[:, :n - s]
        # Keys of samples older than the first window ending in this piece are shared by none.
        np.greater_equal(self._keys.imag, self._seen + s - n, out=self._mask)
        kept[...] = self._keys[self._mask].reshape(kept.shape)
        np.add(piece, self._offsets[:s] + 1j * self._seen, out=keys[:, n - s:])
        result = None
        if len(wanted) and not (len(wanted) == 1 and wanted[0] == s - 1):
            result = self._select(kept.real, piece, wanted)
        keys.sort(axis=1, kind="stable")  # kept is sorted: a merge of two runs
        self._spare, self._keys = self._keys, keys
        self._history.extend(piece)
        self._seen += s
        if result is None:
            if not len(wanted):
                return np.empty((self.channels, 0))
            r1, r2 = self._ranks
            middle = keys.real[:, r1]  # a view of keys, which the next step overwrites: copied
            result = (middle.copy() if r1 == r2 else 0.5 * (middle + keys.real[:, r2]))[:, None]
        return result

    def _select(self, kept: np.ndarray, piece: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """Medians of the windows ending at piece[:, wanted], from the kept sorted values."""
        s = piece.shape[1]
        r1, r2 = self._ranks
        # The window ending at new sample j holds the kept values plus old[j+1:] and new[:j+1].
        # Its rank-r value lies between kept ranks r - s and r: the candidates are that band
        # and those s samples, with rank r - (r1 - s) among them.
        band = kept[:, r1 - s:r2 + 1]
        pool = np.concatenate((self._history.last()[:, :s], piece, band), axis=1)
        index = self._windows.get(s)
        if index is None:  # row j: the band, then old[j+1:] and new[:j+1] (pool columns)
            windows = np.arange(1, s + 1)[:, None] + np.arange(s)
            bands = np.broadcast_to(np.arange(2 * s, 2 * s + band.shape[1]), (s, band.shape[1]))
            index = self._windows[s] = np.concatenate((bands, windows), axis=1)
        candidates = pool[:, index if len(wanted) == s else index[wanted]]
        # Sorting rows of ~2s values costs less than numpy's partition for two ranks here.
        candidates.sort(axis=2)
        upper = candidates[:, :, s + r2 - r1]
        return upper if r1 == r2 else 0.5 * (candidates[:, :, s] + upper)
