"""Decimating buffers for live views: what a browser draws is a few points per channel per
refresh, chosen on the server so that neither the network nor the page carries 2 kHz signals.

Decimation is by running sample index, never by arrival: a point is the sample whose index i
satisfies i % step == step - 1 (the newest sample of each block of `step`, so decimation adds no
delay), or the min and max of that block for raw signals. The choice is therefore the same
whatever the chunking of the stream, and a consumer can look the drawn sample up by its index.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

from biosig_ros.stream_stats import StreamStats

LAST = "last"
MINMAX = "minmax"


def decimation_step(rate: float, target_rate: float) -> int:
    """Samples per drawn point for a stream at `rate` shown at about `target_rate` points/s."""
    if rate <= 0 or target_rate <= 0:
        return 1
    return max(1, int(round(rate / target_rate)))


def picked_rows(first_index: int, count: int, step: int) -> np.ndarray:
    """Rows of a chunk (first running index, sample count) kept by decimation with `step`."""
    return np.arange((step - 1 - first_index) % step, count, step)


class RateGate:
    """Lets through about `rate` items per second of stamp time (rate <= 0: every item).

    Items are judged by their own stamps, so the choice does not depend on arrival jitter; a
    stamp that goes back by more than a period (a restarted source) restarts the schedule."""

    def __init__(self, rate: float):
        self._period = 1.0 / rate if rate > 0 else 0.0
        self._next: float | None = None

    def due(self, stamp: float) -> bool:
        if self._period == 0.0:
            return True
        if self._next is None or stamp < self._next - 2 * self._period or (
                stamp - self._next > self._period):
            self._next = stamp + self._period
            return True
        if stamp >= self._next:
            self._next += self._period
            return True
        return False


class SignalSeries:
    """Decimated recent history of one multi-channel stream (samples x channels chunks).

    Points are JSON-ready lists: [index, t, values] (mode "last") or [index, t, mins, maxs]
    (mode "minmax", index and t of the block's newest sample). `take_new()` returns the points
    added since its previous call (what the next refresh sends); `history()` what a new browser
    starts with. Channel names, unit or rate changing clears the history (`version` counts).
    """

    def __init__(self, window_s: float, target_rate: float, mode: str = LAST):
        self.mode = mode
        self._target_rate = target_rate
        self._history: deque[list] = deque(maxlen=max(2, int(window_s * target_rate) + 2))
        self._new: list[list] = []
        self._partial: list | None = None  # minmax: [bucket id, index, t, mins, maxs]
        self.channel_names: list[str] = []
        self.unit = ""
        self.rate = 0.0
        self.step = 1
        self.version = 0

    def meta(self) -> dict:
        return {"channels": self.channel_names, "unit": self.unit, "rate": self.rate,
                "step": self.step, "mode": self.mode}

    def add(self, data: np.ndarray, first_index: int, stamp: float, rate: float,
            channel_names: list[str], unit: str) -> None:
        """One chunk: data is samples x channels, stamp the time of its first sample."""
        if channel_names != self.channel_names or unit != self.unit or rate != self.rate:
            self.channel_names, self.unit, self.rate = list(channel_names), unit, rate
            self.step = decimation_step(rate, self._target_rate)
            self._history.clear()
            self._new.clear()
            self._partial = None
            self.version += 1
        if self.mode == LAST:
            self._add_last(data, first_index, stamp)
        else:
            self._add_minmax(data, first_index, stamp)

    def _append(self, point: list) -> None:
        self._history.append(point)
        self._new.append(point)

    def _add_last(self, data, first_index, stamp) -> None:
        period = 1.0 / self.rate if self.rate > 0 else 0.0
        for row in picked_rows(first_index, len(data), self.step):
            self._append([first_index + int(row), stamp + row * period, data[row].tolist()])

    def _add_minmax(self, data, first_index, stamp) -> None:
        count = len(data)
        if count == 0:
            return
        period = 1.0 / self.rate if self.rate > 0 else 0.0
        buckets = (first_index + np.arange(count)) // self.step
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        mins = np.fmin.reduceat(data, starts, axis=0)  # fmin/fmax: a NaN sample is skipped
        maxs = np.fmax.reduceat(data, starts, axis=0)
        ends = np.r_[starts[1:], count] - 1
        for k, (start, end) in enumerate(zip(starts, ends)):
            bucket = int(buckets[start])
            low, high = mins[k], maxs[k]
            if self._partial is not None:
                if self._partial[0] == bucket:
                    low = np.fmin(low, self._partial[3])
                    high = np.fmax(high, self._partial[4])
                else:  # the rest of that block never came (a gap): show what there was
                    self._append(self._partial[1:3] + [self._partial[3].tolist(),
                                                       self._partial[4].tolist()])
                self._partial = None
            index = first_index + int(end)
            if index % self.step == self.step - 1:
                self._append([index, stamp + end * period, low.tolist(), high.tolist()])
            else:
                self._partial = [bucket, index, stamp + end * period, low, high]

    def take_new(self) -> list[list]:
        new, self._new = self._new, []
        return new

    def history(self) -> list[list]:
        """The points already taken by take_new() (the next refresh brings the others)."""
        return list(self._history)[:max(0, len(self._history) - len(self._new))]


class PoseSeries(SignalSeries):
    """Decimated history of a stream of single frames without sample rate (joint angles):
    kept by a RateGate on their stamps; the index is the running message count."""

    def __init__(self, window_s: float, target_rate: float):
        super().__init__(window_s, target_rate, LAST)
        self._gate = RateGate(target_rate)
        self._count = 0

    def add_frame(self, values, stamp: float, names: list[str], unit: str = "") -> None:
        if names != self.channel_names:
            self.channel_names, self.unit = list(names), unit
            self._history.clear()
            self._new.clear()
            self.version += 1
        index = self._count
        self._count += 1
        if self._gate.due(stamp):
            self._append([index, stamp, list(values)])


class StreamHealth:
    """What the topic monitor prints for one stream: rates, index gaps and delay."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self.stats = StreamStats(clock=clock)
        self.delay: float | None = None
        self.last_receive: float | None = None
        self._messages = 0

    def record(self, stamp: float, first_index: int | None = None, count: int = 1) -> None:
        """One message: header stamp (capture time), running index and sample count (None:
        the stream has no index and messages are counted)."""
        self._messages += 1
        self.stats.update(self._messages if first_index is None else first_index, count)
        self.last_receive = self._clock()
        self.delay = self.last_receive - stamp

    def summary(self) -> dict:
        stats = self.stats
        if stats.messages == 0:
            return {"messages": 0}
        idle = stats.seconds_since_last() or 0.0
        rate = stats.rate() if idle < 2.0 else 0.0
        return {"messages": stats.messages, "msg_rate": rate * stats.messages / stats.samples,
                "sample_rate": rate, "gaps": stats.gaps, "missing": stats.missing_samples,
                "delay_ms": None if self.delay is None else self.delay * 1e3,
                "idle_s": idle}
