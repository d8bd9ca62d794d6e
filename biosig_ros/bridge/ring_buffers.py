"""What the legacy server serves: per-source buffers of the newest samples, under one lock.

Arrays keep samples on their LAST axis (channels x samples, 3 x markers x frames, nq x frames),
as biosiglive serves them. A buffer of capacity N holds the last N samples (biosiglive's
device_buffer_size / marker_set_buffer_size); capacity 0 holds only the newest chunk (what
biosiglive serves as raw_device_data and marker_set_data).
"""
from __future__ import annotations

import threading

import numpy as np

from biosig_ros.bridge.legacy_protocol import DATA_KEYS


class RingBuffer:
    """The last `capacity` samples of one source, readable as one contiguous view.

    Storage is mirrored (each sample is written at i and i + capacity), so the window of the
    newest samples is always a slice, never a copy; a push costs O(chunk), not O(capacity).
    """

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._storage: np.ndarray | None = None
        self._latest: np.ndarray | None = None
        self.total = 0          # samples pushed since the last reset
        self.resets = 0         # times the leading shape (channel count) changed

    def push(self, chunk: np.ndarray) -> None:
        """Append a chunk (leading dims x n samples). A new leading shape restarts the buffer."""
        chunk = np.asarray(chunk, dtype=np.float64)
        if self.capacity == 0:
            if self._latest is not None and self._latest.shape[:-1] != chunk.shape[:-1]:
                self.resets += 1
            self._latest = chunk.copy()
            self.total += chunk.shape[-1]
            return
        if self._storage is None or self._storage.shape[:-1] != chunk.shape[:-1]:
            if self._storage is not None:
                self.resets += 1
            self._storage = np.zeros(chunk.shape[:-1] + (2 * self.capacity,))
            self.total = 0
        n = chunk.shape[-1]
        if n > self.capacity:
            self.total += n - self.capacity
            chunk = chunk[..., -self.capacity:]
            n = self.capacity
        start = self.total % self.capacity
        first = min(n, self.capacity - start)
        # Write [start, start+n) modulo capacity into both halves of the mirror.
        for offset in (0, self.capacity):
            self._storage[..., offset + start:offset + start + first] = chunk[..., :first]
            if first < n:
                self._storage[..., offset:offset + n - first] = chunk[..., first:]
        self.total += n

    def window(self) -> np.ndarray | None:
        """A view of the newest samples (up to capacity), oldest first; None before any data.
        Valid until the next push: read it under the owner's lock."""
        if self.capacity == 0:
            return self._latest
        if self._storage is None:
            return None
        filled = min(self.total, self.capacity)
        end = self.total % self.capacity + self.capacity
        return self._storage[..., end - filled:end]


class SourceBuffers:
    """The buffers of every served key: key -> one RingBuffer per source (device, marker set).

    Writers (topic callbacks) call push(); readers (the TCP server) hold `lock` while they
    read views(), and copy what they keep before releasing it.
    """

    def __init__(self, layout: dict[str, list[int]]):
        """layout: key -> capacity of each of its sources (a key with no source is omitted)."""
        self.lock = threading.Lock()
        self.version = 0  # incremented by every push: replies built at one version are equal
        self._buffers = {key: [RingBuffer(c) for c in capacities]
                         for key, capacities in layout.items() if capacities}

    @property
    def keys(self) -> list[str]:
        return list(self._buffers)

    def set_capacity(self, key: str, index: int, capacity: int) -> None:
        """Resize one source's buffer (its contents are dropped), e.g. once its rate is known."""
        with self.lock:
            if self._buffers[key][index].capacity != capacity:
                self._buffers[key][index] = RingBuffer(capacity)
                self.version += 1

    def push(self, key: str, index: int, chunk: np.ndarray) -> None:
        with self.lock:
            self._buffers[key][index].push(chunk)
            self.version += 1

    def views(self) -> dict[str, list[np.ndarray]]:
        """key -> list of newest-sample views, for keys whose every source has data, in
        biosiglive's key order. Call with `lock` held."""
        ready = {}
        for key in sorted(self._buffers, key=_key_order):
            windows = [buffer.window() for buffer in self._buffers[key]]
            if all(w is not None for w in windows):
                ready[key] = windows
        return ready

    def waiting_for(self) -> list[str]:
        """Keys with at least one source that has not produced data yet."""
        with self.lock:
            return [key for key, buffers in self._buffers.items()
                    if any(b.window() is None for b in buffers)]


def _key_order(key: str) -> int:
    return DATA_KEYS.index(key) if key in DATA_KEYS else len(DATA_KEYS)
