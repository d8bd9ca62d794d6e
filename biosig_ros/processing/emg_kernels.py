"""Compiled (numba) kernels of the EMG chain: the moving median and mean, the IIR sections, and
the whole streaming chain in one call.

Chunks of EMG are small (16 channels x 20 samples): numpy's per-call overhead (~1 us a call,
tens of us when a call every 10 ms finds its code and data out of the caches) would cost more
than the arithmetic. Each stage is a per-sample function inlined into two kinds of kernel: one
per stage (emg_filters' classes) and emg_chain_step, the whole chain in a single call
(emg_pipeline.EmgPipeline). Both run the same functions, so they give the same samples. The
state lives in arrays owned by the caller; `seen` counts the samples consumed so far.
"""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError as error:  # pragma: no cover - numba is in requirements.txt and package.xml
    raise ImportError("biosig_ros's EMG processing needs numba (pip install numba): "
                      f"{error}") from error

LOWER, UPPER = 0, 1  # the two heaps of the moving median
_inline = njit(cache=True, nogil=True, inline="always")  # no call (and reference count) cost


@_inline
def _sift(keys, slots, size, k, key, slot, tag, where):
    """Puts (key, slot) at position k of a min-heap of `size` entries and moves it up or down
    into place; where[slot] = 2 * position + tag follows every entry that moves. The heap's
    array has a column more than it can hold, and +inf past its entries."""
    while k > 0:
        parent = (k - 1) >> 1
        if not key < keys[parent]:
            break
        keys[k] = keys[parent]
        slots[k] = slots[parent]
        where[slots[k]] = 2 * k + tag
        k = parent
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        child += keys[child + 1] < keys[child]  # branch-free: keys[size:] hold +inf
        if not keys[child] < key:
            break
        keys[k] = keys[child]
        slots[k] = slots[child]
        where[slots[k]] = 2 * k + tag
        k = child
    keys[k] = key
    slots[k] = slot
    where[slot] = 2 * k + tag


@_inline
def _add(low, low_slots, high, high_slots, where, count, v, slot):
    """Adds sample v (ring slot `slot`) to a window of `count` samples. `low` holds the lower
    half negated (a min-heap of -value is a max-heap of value), `high` the upper half."""
    low_size = (count + 1) // 2
    high_size = count // 2
    if low_size == high_size:  # the lower half grows
        if high_size == 0 or v <= high[0]:
            _sift(low, low_slots, low_size + 1, low_size, -v, slot, LOWER, where)
        else:  # v belongs above: the upper half's smallest moves down instead
            top, top_slot = high[0], high_slots[0]
            _sift(low, low_slots, low_size + 1, low_size, -top, top_slot, LOWER, where)
            _sift(high, high_slots, high_size, 0, v, slot, UPPER, where)
    else:  # the upper half grows
        if v >= -low[0]:
            _sift(high, high_slots, high_size + 1, high_size, v, slot, UPPER, where)
        else:
            top, top_slot = -low[0], low_slots[0]
            _sift(high, high_slots, high_size + 1, high_size, top, top_slot, UPPER, where)
            _sift(low, low_slots, low_size, 0, -v, slot, LOWER, where)


@_inline
def _replace(low, low_slots, high, high_slots, where, count, v, slot):
    """Sample v takes ring slot `slot` from the sample leaving a full window of `count`."""
    low_size = (count + 1) // 2
    high_size = count // 2
    k = where[slot] >> 1
    if where[slot] & 1 == LOWER:
        if high_size > 0 and v > high[0]:  # crosses: swaps with the upper half's smallest
            top, top_slot = high[0], high_slots[0]
            _sift(low, low_slots, low_size, k, -top, top_slot, LOWER, where)
            _sift(high, high_slots, high_size, 0, v, slot, UPPER, where)
        else:
            _sift(low, low_slots, low_size, k, -v, slot, LOWER, where)
    else:
        if v < -low[0]:
            top, top_slot = -low[0], low_slots[0]
            _sift(high, high_slots, high_size, k, top, top_slot, UPPER, where)
            _sift(low, low_slots, low_size, 0, -v, slot, LOWER, where)
        else:
            _sift(high, high_slots, high_size, k, v, slot, UPPER, where)


@_inline
def _median_push(low, low_slots, high, high_slots, where, seen, v):
    """Adds sample number `seen` (value v) to one channel's median window; returns the median.

    The window is split between a max-heap of its lower half and a min-heap of its upper half;
    the sample in ring slot seen % window is where[slot] in them, and a new sample takes the
    slot (and heap position) of the one leaving, then is sifted into place: O(log window), with
    no pass over the window."""
    window = where.shape[0]
    slot = seen % window
    if seen < window:
        _add(low, low_slots, high, high_slots, where, seen, v, slot)
        count = seen + 1
    else:
        _replace(low, low_slots, high, high_slots, where, window, v, slot)
        count = window
    middle = -low[0]
    return middle if count & 1 else 0.5 * (middle + high[0])


@_inline
def _mean_push(ring, sums, c, seen, v):
    """Adds sample number `seen` (value v) to channel c's moving-mean window; returns the mean.
    The running sum is recomputed from the ring once every `window` samples, so that rounding
    does not accumulate over a long stream."""
    window = ring.shape[1]
    column = seen % window
    if seen >= window:
        sums[c] += v - ring[c, column]
    else:
        sums[c] += v
    ring[c, column] = v
    count = seen + 1
    if count % window == 0:
        total = 0.0
        for i in range(window):
            total += ring[c, i]
        sums[c] = total
    return sums[c] / min(count, window)


@_inline
def _sos_push(sos, zi, v):
    """One sample through second-order sections (sos: sections x 6, zi: sections x 2 of one
    channel), in the order of operations of scipy.signal.sosfilt's kernel (same result)."""
    for s in range(sos.shape[0]):
        y = sos[s, 0] * v + zi[s, 0]
        zi[s, 0] = sos[s, 1] * v - sos[s, 4] * y + zi[s, 1]
        zi[s, 1] = sos[s, 2] * v - sos[s, 5] * y
        v = y
    return v


@njit(cache=True, nogil=True)
def _has_nan(x):
    for c in range(x.shape[0]):
        for j in range(x.shape[1]):
            if np.isnan(x[c, j]):
                return True
    return False


@njit(cache=True, nogil=True)
def moving_median_step(low, low_slots, high, high_slots, where, seen, x, positions, out):
    """Consumes x (channels, n); writes the median of the window ending at each x[:, p], p in
    `positions` (sorted), to out (channels, len(positions)). Returns the new `seen`, or -1 (the
    state untouched) if x holds a NaN."""
    if _has_nan(x):
        return -1
    for c in range(x.shape[0]):
        k = 0
        for j in range(x.shape[1]):
            median = _median_push(low[c], low_slots[c], high[c], high_slots[c], where[c],
                                  seen + j, x[c, j])
            if k < len(positions) and positions[k] == j:
                out[c, k] = median
                k += 1
    return seen + x.shape[1]


@njit(cache=True, nogil=True)
def moving_mean_step(ring, sums, seen, x, out):
    """Writes the mean of the window ending at each sample of x (channels, n) to out; returns
    the new `seen`."""
    for c in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[c, j] = _mean_push(ring, sums, c, seen + j, x[c, j])
    return seen + x.shape[1]


ENVELOPE_NONE, ENVELOPE_MEDIAN, ENVELOPE_MEAN, ENVELOPE_LOWPASS, ENVELOPE_RMS = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def emg_chain_step(samples, channels, seen, positions, out, centre_ring, centre_sums,
                   bandpass_sos, bandpass_zi, rectify, envelope, median_low, median_low_slots,
                   median_high, median_high_slots, median_where, mean_ring, mean_sums,
                   lowpass_sos, lowpass_zi):
    """The streaming chain over one chunk: samples is flat, samples x channels row-major (a
    message's buffer as it arrives). For each channel and sample: centring (when centre_ring has
    columns), band-pass (when bandpass_sos has sections), rectification, then the envelope
    (ENVELOPE_*; RMS = square root of the moving mean of squares, in the mean's state).
    out[k, c] receives channel c after sample positions[k] (sorted). Returns
    False, with the state untouched, if a sample is not finite."""
    for i in range(len(samples)):
        if not np.isfinite(samples[i]):
            return False
    n = len(samples) // channels
    centring = centre_ring.shape[1] > 0
    bandpass = bandpass_sos.shape[0] > 0
    for c in range(channels):
        k = 0
        for j in range(n):
            t = seen + j
            v = samples[j * channels + c]
            if centring:
                v = v - _mean_push(centre_ring, centre_sums, c, t, v)
            if bandpass:
                v = _sos_push(bandpass_sos, bandpass_zi[c], v)
            if rectify:
                v = abs(v)
            if envelope == ENVELOPE_MEDIAN:
                v = _median_push(median_low[c], median_low_slots[c], median_high[c],
                                 median_high_slots[c], median_where[c], t, v)
            elif envelope == ENVELOPE_MEAN:
                v = _mean_push(mean_ring, mean_sums, c, t, v)
            elif envelope == ENVELOPE_LOWPASS:
                v = _sos_push(lowpass_sos, lowpass_zi[c], v)
            elif envelope == ENVELOPE_RMS:  # the mean's ring holds squares
                v = np.sqrt(max(_mean_push(mean_ring, mean_sums, c, t, v * v), 0.0))
            if k < len(positions) and positions[k] == j:
                out[k, c] = v
                k += 1
    return True


def mean_state(window: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A moving mean's state: the ring of the last `window` samples and the running sums."""
    return np.zeros((channels, window)), np.zeros(channels)


def median_state(window: int, channels: int) -> tuple[np.ndarray, ...]:
    """A moving median's state: the two half-window heaps (keys, the lower half negated, and
    ring slots), each with a column of +inf past its entries, and every slot's heap position."""
    half = (window + 1) // 2 + 1
    return (np.full((channels, half), np.inf), np.zeros((channels, half), dtype=np.int64),
            np.full((channels, half), np.inf), np.zeros((channels, half), dtype=np.int64),
            np.zeros((channels, window), dtype=np.int64))


def warm_up() -> None:
    """Compiles every kernel for the argument types that emg_filters' stages and
    emg_pipeline.EmgPipeline pass (or loads them from numba's cache): tools/bootstrap.sh runs it
    once after a change. It calls the kernels directly (this module imports neither of those)."""
    x = np.zeros((1, 2))
    positions = np.arange(2)
    moving_median_step(*median_state(3, 1), 0, x, positions, np.empty((1, 2)))
    moving_mean_step(*mean_state(3, 1), 0, x, np.empty((1, 2)))
    sos = np.zeros((1, 6))
    sos[0, 0] = sos[0, 3] = 1.0
    emg_chain_step(np.zeros(2), 1, 0, positions, np.empty((2, 1)), *mean_state(3, 1), sos,
                   np.zeros((1, 1, 2)), True, ENVELOPE_MEDIAN, *median_state(3, 1),
                   *mean_state(3, 1), sos, np.zeros((1, 1, 2)))
