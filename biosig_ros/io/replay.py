"""Turn a Recording into a real-time stream of SignalChunks and MarkerFrames (ROS-free).

ReplaySchedule yields events in recording-time order with running indices that keep counting
across loops; ReplayPacer releases each event at its due time on an absolute schedule (no
drift: lateness of one event is not added to the next), stamping it in wall-clock time, or in
a ReplayClock's simulated time (the replay's /clock).
"""
from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Union

from biosig_ros.errors import ConfigError
from biosig_ros.io.recording import Recording
from biosig_ros.signals import MarkerFrame, SignalChunk


@dataclass
class ReplayEvent:
    """Something to publish at recording time `due` (seconds since the replay started).

    `offset` is the recording time of the first sample/frame it carries; a chunk is due when
    its last sample has been acquired, as a device would deliver it."""

    due: float
    offset: float
    item: Union[SignalChunk, MarkerFrame]


class ReplaySchedule:
    """Events of a recording: signal chunks of chunk_size samples and one event per frame."""

    def __init__(self, recording: Recording, chunk_size: int, loop: bool = False):
        if chunk_size < 1:
            raise ConfigError(f"chunk size must be at least one sample, got {chunk_size}")
        self.recording = recording
        self.chunk_size = chunk_size
        self.loop = loop

    def _signal_events(self) -> Iterator[ReplayEvent]:
        track = self.recording.signal
        total = track.data.shape[0]
        index = 0
        while True:
            start = index % total
            count = min(self.chunk_size, total - start)  # a chunk never spans the loop seam
            offset = index / track.sample_rate
            yield ReplayEvent(
                due=(index + count) / track.sample_rate, offset=offset,
                item=SignalChunk(track.data[start:start + count], index, 0.0,
                                 track.sample_rate, track.channel_names, track.unit))
            index += count
            if not self.loop and index >= total:
                return

    def _marker_events(self) -> Iterator[ReplayEvent]:
        track = self.recording.markers
        total = track.positions.shape[0]
        frame = 0
        while self.loop or frame < total:
            offset = frame / track.frame_rate
            yield ReplayEvent(
                due=offset, offset=offset,
                item=MarkerFrame(track.positions[frame % total].copy(), track.marker_names,
                                 frame, 0.0, track.frame_rate, track.subject))
            frame += 1

    def __iter__(self) -> Iterator[ReplayEvent]:
        streams = []
        if self.recording.signal is not None:
            streams.append(self._signal_events())
        if self.recording.markers is not None:
            streams.append(self._marker_events())
        return heapq.merge(*streams, key=lambda event: event.due)


class ReplayClock:
    """Simulated time of a replay at `speed`: it starts at the wall-clock time of its creation
    and advances `speed` seconds per second (on the monotonic clock, so that a wall-clock step
    does not move it). A replay that publishes it as /clock stamps its messages on it."""

    def __init__(self, speed: float, wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        if speed <= 0:
            raise ConfigError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._monotonic = monotonic
        self._origin, self._anchor = wall_clock(), monotonic()

    def now(self) -> float:
        return self._origin + (self._monotonic() - self._anchor) * self.speed


class ReplayPacer:
    """Releases schedule events in real time (scaled by speed) to a callback, in a thread.

    Stamps: wall-clock time at release (recording seconds / speed apart), or with a
    ReplayClock, its time at release (recording seconds apart: rates per simulated second
    are the recording's at any speed)."""

    def __init__(self, schedule: ReplaySchedule, emit: Callable[[ReplayEvent], None],
                 speed: float = 1.0, wall_clock: Callable[[], float] = time.time,
                 replay_clock: ReplayClock | None = None):
        if speed <= 0:
            raise ConfigError(f"speed must be > 0, got {speed}")
        if replay_clock is not None and replay_clock.speed != speed:
            raise ConfigError("the replay clock must run at the replay's speed")
        self._schedule = schedule
        self._emit = emit
        self._speed = speed
        self._wall_clock = wall_clock if replay_clock is None else replay_clock.now
        self._stamp_rate = 1.0 if replay_clock is None else speed  # stamp seconds per second
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.max_lateness = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="replay-pacer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        start_monotonic = time.monotonic()
        start_wall = self._wall_clock()
        for event in self._schedule:
            due = start_monotonic + event.due / self._speed
            while not self._stop.is_set():
                remaining = due - time.monotonic()
                if remaining <= 0:
                    break
                # Event.wait keeps stop responsive; its granularity (~0.1 ms) is far below
                # a chunk period.
                self._stop.wait(min(remaining, 0.05))
            if self._stop.is_set():
                return
            self.max_lateness = max(self.max_lateness, time.monotonic() - due)
            event.item.stamp = start_wall + event.offset / self._speed * self._stamp_rate
            self._emit(event)
        self.finished.set()
