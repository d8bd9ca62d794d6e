"""Compiled (numba) kernels of the moving-window stages: median and mean of the last N samples.

Chunks of EMG are small (16 channels x 20 samples): numpy's per-call overhead (~1 us a call)
would cost more than the arithmetic, so each step is one compiled call over plain arrays. The
state lives in arrays owned by the caller (emg_filters.MovingMedian / MovingMean); `seen`
counts the samples consumed so far, the window holds the last min(seen, N).
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


@njit(cache=True, nogil=True)
def moving_median_step(low, low_slots, high, high_slots, where, seen, x, positions, out):
    """Consumes x (channels, n) and writes the median of the window ending at each x[:, p],
    p in `positions` (sorted), to out (channels, len(positions)). Returns the new `seen`, or -1
    (the state untouched) if x holds a NaN.

    The window is split between a max-heap of its lower half and a min-heap of its upper half;
    the sample in ring slot t % window is where[slot] in them, and a new sample takes the slot
    (and heap position) of the one leaving, then is sifted into place: O(log window) per
    sample, whatever the stream's length, with no pass over the window.
    """
    channels, window = where.shape
    n = x.shape[1]
    for c in range(channels):
        for j in range(n):
            if np.isnan(x[c, j]):
                return -1
    for c in range(channels):
        lo, lo_slots, hi, hi_slots, places = low[c], low_slots[c], high[c], high_slots[c], where[c]
        k = 0
        slot = seen % window
        for j in range(n):
            v = x[c, j]
            count = seen + j
            if count < window:
                _add(lo, lo_slots, hi, hi_slots, places, count, v, slot)
                count += 1
            else:
                count = window
                _replace(lo, lo_slots, hi, hi_slots, places, count, v, slot)
            slot = slot + 1 if slot + 1 < window else 0
            if k < len(positions) and positions[k] == j:
                middle = -lo[0]
                out[c, k] = middle if count & 1 else 0.5 * (middle + hi[0])
                k += 1
    return seen + n


@njit(cache=True, nogil=True)
def moving_mean_step(ring, sums, seen, x, out):
    """Writes the mean of the window ending at each sample of x (channels, n) to out; returns
    the new `seen`. The running sums are recomputed from the ring once every N samples, so
    rounding does not accumulate over a long stream."""
    channels, window = ring.shape
    for j in range(x.shape[1]):
        column = seen % window
        full = seen >= window
        seen += 1
        exact = seen % window == 0
        for c in range(channels):
            v = x[c, j]
            if full:
                sums[c] += v - ring[c, column]
            else:
                sums[c] += v
            ring[c, column] = v
            if exact:
                total = 0.0
                for i in range(window):
                    total += ring[c, i]
                sums[c] = total
            out[c, j] = sums[c] / min(seen, window)
    return seen


_warm = False


def warm_up() -> None:
    """Compiles (or loads from numba's cache) both kernels for the array types the stages pass,
    so that the first chunk of a live stream does not wait for it (~0.2 s cached, seconds not)."""
    global _warm
    if _warm:
        return
    x = np.zeros((1, 2))
    moving_median_step(np.full((1, 2), np.inf), np.zeros((1, 2), np.int64),
                       np.full((1, 2), np.inf), np.zeros((1, 2), np.int64),
                       np.zeros((1, 1), np.int64), 0, x, np.arange(1), np.empty((1, 1)))
    moving_mean_step(np.zeros((1, 1)), np.zeros(1), 0, x, np.empty((1, 2)))
    _warm = True
