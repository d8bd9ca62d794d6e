"""Continuity of a stream of chunks by running sample index: next, gap, late or restarted.

A stateful filter cannot go back: a chunk whose first index is below the next expected one
was either already processed (a late or repeated chunk: dropped) or, when it lies far behind
(more than `restart_after` samples), belongs to a stream that started again (the filters must
start again too). A chunk above the expected index follows a gap (samples lost upstream).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from biosig_ros.processing.emg_filters import check_count
from biosig_ros.stream_stats import StreamStats

NEXT, LATE, RESTART = "next", "late", "restart"


@dataclass(frozen=True)
class ContinuitySettings:
    """restart_after: how many samples behind the expected index a chunk must start to be taken
    for a restarted stream rather than a late one (e.g. one second of samples)."""

    restart_after: int = 2000

    def __post_init__(self) -> None:
        check_count("restart_after", self.restart_after)


class Verdict(NamedTuple):
    """What to do with a chunk: NEXT (process; `missing` samples were lost before it), LATE
    (drop it) or RESTART (reset the filters, then process). `expected` is the index the chunk
    should have started at (None for the first chunk)."""

    action: str
    missing: int
    expected: int | None


class StreamContinuity:
    """Counts chunks, gaps, late chunks and restarts of one stream; step() per chunk, before it
    is processed. A chunk that is then refused still counts as received (its samples are
    consumed: the next chunk is not a gap)."""

    def __init__(self, settings: ContinuitySettings = ContinuitySettings(),
                 clock=time.monotonic):
        self.settings = settings
        self._clock = clock
        self.stats = StreamStats(clock=clock)
        self.late = 0
        self.restarts = 0
        self.missing_total = 0
        self.gaps_total = 0

    @property
    def expected_index(self) -> int | None:
        return self.stats.expected_index

    def step(self, first_index: int, count: int) -> Verdict:
        expected = self.stats.expected_index
        if expected is not None and first_index < expected:
            if expected - first_index <= self.settings.restart_after:
                self.late += 1
                return Verdict(LATE, 0, expected)
            self.restarts += 1
            self.stats = StreamStats(clock=self._clock)  # rate and gaps of the new stream
            self.stats.update(first_index, count)
            return Verdict(RESTART, 0, expected)
        missing = self.stats.update(first_index, count)
        self.missing_total += missing
        self.gaps_total += missing > 0
        return Verdict(NEXT, missing, expected)
