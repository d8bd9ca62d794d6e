"""Pairing an input with the quality of its frame (same header stamp), whichever of the two
arrives first: DDS orders one writer's samples only, so across two topics a pose may come
before or after its IkQuality (and a muscle torque before or after its torque/quality)."""
from __future__ import annotations

import math
from collections import OrderedDict

_KEPT = 64  # qualities waiting for their frame (a frame arrives within a frame or two)


def stamp_key(stamp: float) -> int:
    """Nanoseconds: both stamps are converted from the same header fields the same way
    (sec + nanosec x 1e-9), so equal frames give equal keys."""
    return round(stamp * 1e9)


class RecentByStamp:
    """The values of the newest few frames (a quality waiting for its input), by stamp."""

    def __init__(self, kept: int = _KEPT):
        self._values: OrderedDict[int, object] = OrderedDict()
        self._kept = kept

    def keep(self, stamp: float, value) -> None:
        self._values[stamp_key(stamp)] = value
        while len(self._values) > self._kept:
            self._values.popitem(last=False)

    def pop(self, stamp: float, default=None):
        return self._values.pop(stamp_key(stamp), default)

    def __contains__(self, stamp: float) -> bool:
        return stamp_key(stamp) in self._values


class StampPairing:
    """The newest input waiting for its quality, and the qualities waiting for their input."""

    def __init__(self, kept: int = _KEPT):
        self._problems = RecentByStamp(kept)
        self._waiting: tuple[int, tuple] | None = None

    def input(self, stamp: float, item: tuple) -> str | None:
        """The problem of this input's frame ("" = clean) when its quality is here; None: the
        input waits for it (in place of any older one waiting). An input whose stamp is not
        finite is let through as clean: the freshness check refuses it with its reason."""
        if not math.isfinite(stamp):
            return ""
        problem = self._problems.pop(stamp)
        if problem is None:
            self._waiting = (stamp_key(stamp), item)
        return problem

    def quality(self, stamp: float, problem: str) -> tuple | None:
        """The waiting input of this frame, to be used now with `problem`; None: the problem
        is kept until its input comes (only the newest few are kept)."""
        if not math.isfinite(stamp):
            return None  # its input waits, and goes stale
        key = stamp_key(stamp)
        if self._waiting is not None and self._waiting[0] == key:
            item, self._waiting = self._waiting[1], None
            return item
        self._problems.keep(stamp, problem)
        return None
