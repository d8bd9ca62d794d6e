"""Running statistics of a stream of chunks or frames: rate, index gaps, latency."""
from __future__ import annotations

import time
from collections import deque


class StreamStats:
    """Counts samples, detects gaps in running indices and measures rate over a sliding window.

    update(first_index, count) is called per received chunk (count = 1 for frames).
    """

    def __init__(self, window_s: float = 2.0, clock=time.monotonic):
        self._clock = clock
        self._window_s = window_s
        self._arrivals: deque[tuple[float, int]] = deque()
        self.expected_index: int | None = None
        self.messages = 0
        self.samples = 0
        self.gaps = 0
        self.missing_samples = 0
        self.out_of_order = 0
        self.last_arrival: float | None = None

    def update(self, first_index: int, count: int) -> int:
        """Record a chunk; return how many samples were missing before it (0 when contiguous)."""
        now = self._clock()
        missing = 0
        if self.expected_index is not None:
            if first_index > self.expected_index:
                missing = first_index - self.expected_index
                self.gaps += 1
                self.missing_samples += missing
            elif first_index < self.expected_index:
                self.out_of_order += 1
        self.expected_index = first_index + count
        self.messages += 1
        self.samples += count
        self.last_arrival = now
        self._arrivals.append((now, count))
        while self._arrivals and now - self._arrivals[0][0] > self._window_s:
            self._arrivals.popleft()
        return missing

    def rate(self) -> float:
        """Samples per second over the sliding window (0 when fewer than two arrivals)."""
        if len(self._arrivals) < 2:
            return 0.0
        span = self._arrivals[-1][0] - self._arrivals[0][0]
        if span <= 0:
            return 0.0
        # The first arrival opens the window; its samples were acquired before it.
        return sum(count for _, count in list(self._arrivals)[1:]) / span

    def seconds_since_last(self) -> float | None:
        return None if self.last_arrival is None else self._clock() - self.last_arrival
