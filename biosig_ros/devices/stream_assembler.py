"""Running sample indices and capture stamps for a device that sends blocks of samples (ROS-free).

A device rarely says when it took a sample; it says how many it took. SampleClock turns arrival
times of whole blocks into acquisition times, StreamAssembler cuts the rows into chunks with
running indices on that clock, across reconnections, pauses, stalls and bursts.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from biosig_ros.signals import SignalChunk

RATE_TOLERANCE_HZ = 0.5  # a reconnected device whose rate differs more starts a new clock
SETTLE_WINDOW_S = 0.05   # a new segment's reads are paced when this long brought ...
PACED_SPEED = 2.0        # ... at most this many times real time (StreamAssembler)
SETTLE_MAX_S = 0.5       # longest hold of a new segment's first reads
BURST_S = 0.25           # a read completing this much signal or more is sent as one message


class SampleClock:
    """Acquisition time of running sample indices, from arrival times of whole frames.

    A frame is sent after its last sample was taken, so each arrival bounds the time of the
    samples it completes from above; the lowest bound seen (allowed to rise by `drift` s/s for
    clock drift) removes network and scheduling delays from the stamps.
    """

    def __init__(self, rate: float, base_index: int, drift: float = 1e-4):
        self.rate = rate
        self.base_index = base_index
        self.base_time: float | None = None
        self._drift = drift
        self.last_arrival = 0.0

    def update(self, arrival: float, end_index: int) -> None:
        """Samples up to end_index (exclusive) had been acquired at arrival."""
        candidate = arrival - (end_index - self.base_index) / self.rate
        if self.base_time is None:
            self.base_time = candidate
        else:
            allowed = self.base_time + self._drift * max(0.0, arrival - self.last_arrival)
            self.base_time = min(allowed, candidate)
        self.last_arrival = max(self.last_arrival, arrival)

    def stamp(self, index: int) -> float:
        return self.base_time + (index - self.base_index) / self.rate

    def index_at(self, when: float) -> int:
        return self.base_index + int(round((when - self.base_time) * self.rate))


class StreamAssembler:
    """Selects columns of decoded rows, scales them to SI and cuts chunks with running indices.

    begin_segment() is called when a connection starts streaming. The segment's first reads are
    held until they arrive at the device's pace: frames the device held during a stall come in a
    burst, and only its last read tells how early they were acquired. The first sample then gets
    the index that the previous segment's clock gives its acquisition time, so an outage (or a
    pause) leaves a gap in the indices equal to the samples it cost, and stamps stay on one
    clock that never runs ahead of arrival.
    """

    def __init__(self, columns: list[int], scales: np.ndarray, names: list[str], unit: str,
                 chunk_size: int, emit: Callable[[SignalChunk], None]):
        self.columns = np.asarray(columns, dtype=int)
        self.scales = np.asarray(scales, dtype=float)
        self.names = list(names)
        self.unit = unit
        self.chunk_size = chunk_size            # 0: emit what each read completes
        self._emit = emit
        self.rate = 0.0
        self.next_index = 0
        self.clock: SampleClock | None = None
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._pending_first = 0
        self._held: list[tuple[np.ndarray, float]] | None = None
        self._last_stamp = -math.inf
        self._count_jump = False
        self.samples = 0
        self.lost = 0                           # samples skipped by segments after a loss

    def begin_segment(self, rate: float, after_loss: bool = False) -> None:
        """A new connection streams; after_loss: the index jump counts as lost samples (not
        after a deliberate pause)."""
        self.flush()
        self.rate = rate
        self._held = []
        self._count_jump = after_loss

    def push(self, rows: np.ndarray, arrival: float) -> None:
        if rows.shape[0] == 0:
            return
        if self._held is not None:
            self._held.append((rows, arrival))
            if not self._paced():
                return
            held, self._held = self._held, None
            self._start_segment(held)
            for held_rows, held_arrival in held:
                self._append(held_rows, held_arrival)
            return
        self._append(rows, arrival)

    def skip(self, count: int) -> None:
        """`count` samples the device counted but never delivered (e.g. lost UDP packets): the
        indices jump over them and they are counted as lost."""
        if count <= 0:
            return
        self.flush()
        self.next_index += count
        self.lost += count

    def flush(self) -> None:
        """Emit what is pending (end of a segment, or every read when chunk_size is 0)."""
        if self._held:
            held, self._held = self._held, None
            self._start_segment(held)
            for rows, arrival in held:
                self._append(rows, arrival)
        if self._pending_count:
            self._emit_pending(self._pending_count)

    def _paced(self) -> bool:
        # A burst comes much faster than real time; the reads of the last SETTLE_WINDOW_S tell
        # whether it is over. A timer-based test would be fooled by one late read; this one
        # costs SETTLE_WINDOW_S of latency once per segment, SETTLE_MAX_S at most.
        held = self._held
        last = held[-1][1]
        span = last - held[0][1]
        if span >= SETTLE_MAX_S:
            return True
        if span < SETTLE_WINDOW_S:
            return False
        recent = sum(rows.shape[0] for rows, arrival in held if arrival > last - SETTLE_WINDOW_S)
        return recent <= PACED_SPEED * SETTLE_WINDOW_S * self.rate

    def _start_segment(self, held: list[tuple[np.ndarray, float]]) -> None:
        # Earliest acquisition time of the first held sample that every arrival allows.
        total, first_time = 0, math.inf
        for rows, arrival in held:
            total += rows.shape[0]
            first_time = min(first_time, arrival - total / self.rate)
        if self.clock is not None and self.clock.base_time is not None and \
                abs(self.clock.rate - self.rate) < RATE_TOLERANCE_HZ:
            start = max(self.next_index, self.clock.index_at(first_time))
            if self._count_jump:
                self.lost += start - self.next_index
            self.next_index = start
        # Anchored on every held arrival at once: the held reads replayed next must not stamp
        # their chunks from the first arrival alone.
        self.clock = SampleClock(self.rate, self.next_index)
        self.clock.base_time, self.clock.last_arrival = first_time, held[-1][1]

    def _append(self, rows: np.ndarray, arrival: float) -> None:
        count = rows.shape[0]
        values = rows[:, self.columns] * self.scales
        if not self._pending:
            self._pending_first = self.next_index
        self._pending.append(values)
        self._pending_count += count
        self.next_index += count
        self.samples += count
        self.clock.update(arrival, self.next_index)
        if self.chunk_size == 0:
            self._emit_pending(self._pending_count)
            return
        ready = self._pending_count // self.chunk_size
        if ready > 1 and ready * self.chunk_size >= BURST_S * self.rate:
            # A burst: its chunks go out as one message of whole chunks, so that a
            # subscriber's queue is not flooded with hundreds of messages at once.
            self._emit_pending(ready * self.chunk_size)
        while self._pending_count >= self.chunk_size:
            self._emit_pending(self.chunk_size)

    def _emit_pending(self, count: int) -> None:
        data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        chunk, rest = data[:count], data[count:]
        first = self._pending_first
        self._pending = [rest] if rest.shape[0] else []
        self._pending_count = rest.shape[0]
        self._pending_first = first + count
        # The clock tightens when a frame arrives faster than the first ones did; stamps still
        # never go backwards (the correction then shortens one chunk interval).
        stamp = max(self.clock.stamp(first), self._last_stamp + 1e-6)
        self._last_stamp = stamp
        self._emit(SignalChunk(np.ascontiguousarray(chunk), first, stamp, self.rate, self.names,
                               self.unit))
