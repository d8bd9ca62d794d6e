"""Bytes from a device -> whole samples, for custom devices (ROS-free).

A TCP (or serial) read returns whatever arrived: after a stall, `recv(4096)` may end in the
middle of a sample, and `np.frombuffer(data).reshape(-1, channels)` then fails ("cannot
reshape array of size 1024 into shape (3)") or, worse, shifts every later sample by a few
channels. SampleFramer keeps the partial sample and completes it with the next read:

    self.framer = SampleFramer(channels=len(self.settings.channel_names), dtype="<f4")
    ...
    data = self.sock.recv(4096)
    return self.framer.feed(data)      # samples x channels (whole samples only), or None

A datagram (UDP) is a message of its own: `framer.datagram(payload)` returns its whole
samples and drops (and counts) a trailing partial one rather than carrying it into the next
datagram.
"""
from __future__ import annotations

import numpy as np


class SampleFramer:
    """Whole samples (rows of `channels` values of `dtype`) out of arbitrary byte pieces."""

    def __init__(self, channels: int, dtype: str | np.dtype = "<f4"):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self.sample_bytes = channels * self.dtype.itemsize
        self._pending = bytearray()
        self.dropped_bytes = 0      # bytes of partial samples dropped (datagrams, reset)

    @property
    def pending_bytes(self) -> int:
        """Bytes of a partial sample waiting for the rest."""
        return len(self._pending)

    def feed(self, data: bytes) -> np.ndarray | None:
        """A stream's next piece -> its whole samples (samples x channels), the partial one
        kept for the next call; None when no sample is complete yet."""
        self._pending += data
        whole = len(self._pending) - len(self._pending) % self.sample_bytes
        if not whole:
            return None
        samples = np.frombuffer(bytes(self._pending[:whole]), self.dtype)
        del self._pending[:whole]
        return samples.reshape(-1, self.channels)

    def datagram(self, payload: bytes) -> np.ndarray | None:
        """One message's whole samples; a trailing partial sample is dropped and counted."""
        extra = len(payload) % self.sample_bytes
        self.dropped_bytes += extra
        whole = len(payload) - extra
        if not whole:
            return None
        return np.frombuffer(payload[:whole], self.dtype).reshape(-1, self.channels)

    def reset(self) -> None:
        """Forget a partial sample (call it on reconnection: the stream starts afresh)."""
        self.dropped_bytes += len(self._pending)
        self._pending.clear()
