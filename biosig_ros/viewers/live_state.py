"""What the live page shows, kept between refreshes, and its JSON framing.

The ingest methods (on_signal, on_markers, on_joints, on_torque) are called by the node's topic callbacks:
they only decimate into bounded buffers under a lock. `frame()` (the refresh thread, ~30 Hz)
takes what arrived since the previous refresh and encodes it once for every browser;
`snapshot()` encodes what a browser that (re)connects starts with: the description of every
stream (meta) and the recent history up to frame `seq`; frames up to that number, which the
browser may still receive after it, are to be skipped.

Messages (one JSON object each):
  init:  {"type": "init", "seq", "meta", "history": {stream: points}, "markers", "skeleton"}
  frame: {"type": "frame", "seq", "time", stream: new points... (envelope, joints,
          torque_muscle, torque_inverse_dynamics; raw when asked), "markers", "skeleton", "sync",
          "recv": {stream: wall time the newest message arrived}, "stats" (about once a
          second), "meta" (when a stream's channels, unit or rate changed)}
The markers shown are those of the skeleton's frame (same stamp) while that frame is among the
last `_PAIRED_FRAMES` received: markers and skeleton then agree, and "sync" says how far they
are behind the newest markers ({"paired": true, "lag": s}); otherwise (no pose yet, a pose
older than that, or no marker frame of its stamp) the newest markers, and "sync" gives how far
the skeleton's pose is behind them ({"paired": false, "lag": s}; null without a skeleton).
Points are [index, t, values] (raw EMG: [index, t, mins, maxs]); t is the sample's capture time
(POSIX seconds). Non-finite numbers travel as null (JSON has no NaN). Torque points carry the
efforts of meta.torques.dofs in that order (null: a DoF the topic does not name, listed in its
stream's meta "missing"); meta.torques.dofs empty = no torque plot.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque

import numpy as np

from biosig_ros.viewers.skeleton import Skeleton, dof_display
from biosig_ros.viewers.streams import MINMAX, PoseSeries, SignalSeries, StreamHealth
from biosig_ros.viewers.torques import TORQUE_STREAMS, TORQUE_UNIT, TorqueSeries, chosen_dofs

SIGNAL_STREAMS = ("envelope", "raw")
STREAMS = ("envelope", "raw", "markers", "joints", *TORQUE_STREAMS)
_STATS_PERIOD_S = 1.0
# Marker frames kept to pair with the skeleton: 5 s at 100 Hz (an IK node that far behind is
# shown unpaired, with its lag).
_PAIRED_FRAMES = 500
_SAME_STAMP_S = 1e-6  # both stamps come from the same header: equal but for float rounding


def dumps_numbers(value) -> str:
    """JSON of numbers and lists of numbers, non-finite values as null."""
    text = json.dumps(value, separators=(",", ":"))
    if "N" in text or "I" in text:
        text = text.replace("-Infinity", "null").replace("Infinity", "null").replace(
            "NaN", "null")
    return text


def is_mvc_fraction(unit: str) -> bool:
    """An envelope normalised by MVC says so in its unit: emg_processing_node publishes ""
    (a fraction, no unit) once an MVC is applied; "fraction of MVC" is understood too."""
    return unit == "" or "mvc" in unit.lower()


class LiveState:
    """The latest data of the streams, decimated; thread-safe."""

    def __init__(self, topics: dict[str, str], window_s: float, chart_rate: float,
                 raw_chart_rate: float, refresh_rate: float, skeleton: Skeleton | None = None,
                 clock=time.time, torque_dofs=()):
        """torque_dofs: the DoFs whose torques are plotted (none: no torque plot)."""
        self._lock = threading.Lock()
        self._clock = clock
        self.topics = dict(topics)
        self.skeleton = skeleton
        self._config = {"window_s": window_s, "refresh_rate": refresh_rate,
                        "chart_rate": chart_rate}
        self.series = {"envelope": SignalSeries(window_s, chart_rate),
                       "raw": SignalSeries(window_s, raw_chart_rate, MINMAX),
                       "joints": PoseSeries(window_s, chart_rate)}
        self.torque_dofs = chosen_dofs(torque_dofs)
        for stream in TORQUE_STREAMS:
            self.series[stream] = TorqueSeries(self.torque_dofs, window_s, chart_rate)
        self.health = {name: StreamHealth(clock) for name in STREAMS}
        self._marker_names: list[str] = []
        self._marker_version = 0
        self._markers: dict | None = None
        self._recent_markers: deque[dict] = deque(maxlen=_PAIRED_FRAMES)
        self._last_seen: dict[str, list[float]] = {}
        self._q: np.ndarray | None = None
        self._q_stamp = 0.0
        self._q_new = False
        self._skeleton_cache: dict | None = None
        self._seq = 0
        self._sent_meta_key: tuple = ()
        self._next_stats = 0.0

    # --- ingest (topic callbacks) --------------------------------------------------------

    def on_signal(self, stream: str, data: np.ndarray, first_index: int, stamp: float,
                  rate: float, channel_names: list[str], unit: str) -> None:
        """A SignalChunk of `stream` ("envelope" or "raw"): data is samples x channels."""
        with self._lock:
            self.health[stream].record(stamp, first_index, len(data))
            self.series[stream].add(data, first_index, stamp, rate, channel_names, unit)

    def on_markers(self, names: list[str], positions: np.ndarray, occluded, frame_number: int,
                   stamp: float) -> None:
        """A marker frame: positions markers x 3 (metres), occluded flags per marker."""
        occluded = (np.asarray(occluded, dtype=bool)
                    | ~np.isfinite(positions).all(axis=1)).tolist()
        shown = []
        for name, position, hidden in zip(names, positions.tolist(), occluded):
            if not hidden:
                self._last_seen[name] = position
            shown.append(self._last_seen.get(name))  # occluded: where it was last seen
        with self._lock:
            self.health["markers"].record(stamp, frame_number, 1)
            if list(names) != self._marker_names:
                self._marker_names = list(names)
                self._marker_version += 1
            self._markers = {"frame": int(frame_number), "t": stamp, "pos": shown,
                             "occ": [int(o) for o in occluded]}
            self._recent_markers.append(self._markers)

    def on_joints(self, names: list[str], positions, stamp: float) -> np.ndarray | None:
        """A JointState: names and positions (rad / m). Returns the model's q (None without a
        model or when the message lacks one of its DoFs)."""
        q = self.skeleton.q_from(names, positions) if self.skeleton is not None else None
        with self._lock:
            self.health["joints"].record(stamp)
            self.series["joints"].add_frame(positions, stamp, list(names))
            if q is not None:
                self._q, self._q_stamp, self._q_new = q, stamp, True
        return q

    def on_torque(self, stream: str, names: list[str], efforts, stamp: float) -> None:
        """A torque_node JointState of `stream` (a TORQUE_STREAMS key): DoF names and efforts
        (N.m). ValueError when names and efforts do not pair (nothing is kept)."""
        with self._lock:
            self.series[stream].add_efforts(names, efforts, stamp)
            self.health[stream].record(stamp)

    # --- encoding (refresh thread, HTTP threads) ------------------------------------------

    def _meta_key(self) -> tuple:
        return tuple(s.version for s in self.series.values()) + (self._marker_version,)

    def _meta(self) -> dict:
        streams = {name: {"topic": self.topics.get(name, ""), **series.meta()}
                   for name, series in self.series.items()}
        envelope = self.series["envelope"]
        streams["envelope"]["mvc"] = bool(envelope.channel_names) and is_mvc_fraction(
            envelope.unit)
        joints = self.series["joints"].channel_names
        rotational = None
        if self.skeleton is not None and joints == self.skeleton.dof_names:
            rotational = self.skeleton.rotational
        return {"config": self._config, "streams": streams,
                "markers": {"topic": self.topics.get("markers", ""),
                            "names": self._marker_names},
                "dofs": dof_display(joints, rotational),
                "torques": {"dofs": self.torque_dofs, "unit": TORQUE_UNIT,
                            "streams": list(TORQUE_STREAMS)},
                "skeleton": self.skeleton.meta() if self.skeleton is not None else None}

    def _skeleton_now(self) -> dict | None:
        """Segment origins for the newest pose (computed once per new pose)."""
        with self._lock:
            q, stamp, new = self._q, self._q_stamp, self._q_new
            self._q_new = False
        if q is None or self.skeleton is None:
            return None
        if new or self._skeleton_cache is None:
            origins = self.skeleton.origins(q)
            self._skeleton_cache = {"t": stamp, "origins": origins.tolist()}
        return self._skeleton_cache

    def _paired(self, skeleton: dict | None) -> tuple[dict | None, dict | None]:
        """(markers to show, sync) for this skeleton; call with the lock held."""
        newest = self._markers
        if skeleton is None or newest is None:
            return newest, None
        stamp = skeleton["t"]
        if stamp <= newest["t"] + _SAME_STAMP_S:
            for frame in reversed(self._recent_markers):  # the pose is usually recent
                if abs(frame["t"] - stamp) <= _SAME_STAMP_S:
                    return frame, {"paired": True, "lag": newest["t"] - frame["t"]}
                if frame["t"] < stamp:
                    break
        return newest, {"paired": False, "lag": newest["t"] - stamp}

    def _stats(self) -> dict:
        return {name: {"topic": self.topics.get(name, ""), **health.summary()}
                for name, health in self.health.items() if self.topics.get(name)}

    def frame(self, with_raw: bool) -> tuple[str, str | None]:
        """The next refresh: (JSON without raw EMG, JSON with it or None when not asked)."""
        skeleton = self._skeleton_now()
        now = self._clock()
        with self._lock:
            self._seq += 1
            new = {name: series.take_new() for name, series in self.series.items()}
            markers, sync = self._paired(skeleton)
            recv = {name: h.last_receive for name, h in self.health.items() if h.last_receive}
            meta_key = self._meta_key()
            meta = self._meta() if meta_key != self._sent_meta_key else None
            self._sent_meta_key = meta_key
            stats = None
            if now >= self._next_stats:
                self._next_stats = now + _STATS_PERIOD_S
                stats = self._stats()
            seq = self._seq
        parts = [f'{{"type":"frame","seq":{seq},"time":{now!r}',
                 f',"envelope":{dumps_numbers(new["envelope"])}',
                 f',"joints":{dumps_numbers(new["joints"])}',
                 *(f',"{name}":{dumps_numbers(new[name])}' for name in TORQUE_STREAMS),
                 f',"markers":{dumps_numbers(markers)}',
                 f',"skeleton":{dumps_numbers(skeleton)}',
                 f',"sync":{json.dumps(sync)}',
                 f',"recv":{json.dumps(recv)}']
        if stats is not None:
            parts.append(f',"stats":{json.dumps(stats)}')
        if meta is not None:
            parts.append(f',"meta":{json.dumps(meta)}')
        base = "".join(parts)
        raw = dumps_numbers(new["raw"]) if with_raw else None
        return base + "}", (base + f',"raw":{raw}}}' if with_raw else None)

    def drain(self) -> None:
        """Forget the points of this refresh (nobody watches: nothing to encode)."""
        with self._lock:
            for series in self.series.values():
                series.take_new()

    def snapshot(self, with_raw: bool) -> str:
        """What a new browser starts with: meta, history, newest markers and skeleton."""
        skeleton = self._skeleton_now()
        with self._lock:
            history = {name: series.history() for name, series in self.series.items()
                       if with_raw or name != "raw"}
            markers, sync = self._paired(skeleton)
            payload = {"type": "init", "seq": self._seq, "time": self._clock(),
                       "meta": self._meta(), "markers": markers, "skeleton": skeleton,
                       "sync": sync, "stats": self._stats()}
        encoded = json.dumps(payload, default=str)
        history_json = ",".join(f'"{name}":{dumps_numbers(points)}'
                                for name, points in history.items())
        return encoded[:-1] + f',"history":{{{history_json}}}}}'
