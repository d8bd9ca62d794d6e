"""What the operator panel shows, kept between screen refreshes (no ROS, no Qt).

The ROS adapter's thread calls the `on_*` methods with plain values; they decimate into
bounded ring buffers under a lock. The GUI's timer calls `snapshot()` (copies, taken under the
lock) about 30 times a second and only draws. Decimation is by running sample index for the
envelope (biosig_ros.viewers.streams.picked_rows: the same samples whatever the chunking, so a
test can look a drawn point up by its index) and by header stamps for the joint angles.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from biosig_ros.viewers.live_state import is_mvc_fraction
from biosig_ros.viewers.skeleton import dof_display
from biosig_ros.viewers.streams import RateGate, decimation_step, picked_rows


class Ring:
    """The last `capacity` rows of (index, t, values[channels]); fixed memory."""

    def __init__(self, capacity: int, channels: int):
        self.capacity = capacity
        self.index = np.zeros(capacity, dtype=np.int64)
        self.t = np.zeros(capacity)
        self.values = np.zeros((capacity, channels))
        self.count = 0  # rows ever added

    def add(self, index, t, values) -> None:
        """Rows: index (n,), t (n,), values (n x channels); only the last `capacity` kept."""
        n = len(index)
        if n > self.capacity:
            index, t, values, self.count = (index[-self.capacity:], t[-self.capacity:],
                                            values[-self.capacity:], self.count + n - self.capacity)
            n = self.capacity
        slots = (self.count + np.arange(n)) % self.capacity
        self.index[slots], self.t[slots], self.values[slots] = index, t, values
        self.count += n

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies, oldest first."""
        kept = min(self.count, self.capacity)
        order = (self.count - kept + np.arange(kept)) % self.capacity
        return self.index[order], self.t[order], self.values[order]


@dataclass
class StreamView:
    """A plotted stream as the GUI gets it."""
    names: list[str] = field(default_factory=list)
    unit: str = ""
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass
class Snapshot:
    """Everything one refresh draws (`version` changes when anything did)."""
    version: int
    namespace: str
    envelope: StreamView
    mvc_percent: np.ndarray | None  # newest envelope sample x 100, when it is a fraction of MVC
    joints: StreamView              # degrees (rotations) or millimetres (translations)
    assist: dict | None
    diagnostics: list[dict]


class PanelModel:
    """Bounded, decimated buffers for one namespace at a time; thread-safe."""

    def __init__(self, window_s: float = 10.0, points_per_second: float = 30.0,
                 clock=time.time):
        self.window_s = window_s
        self.points_per_second = points_per_second
        self._capacity = max(2, int(window_s * points_per_second) + 2)
        self._clock = clock
        self._lock = threading.Lock()
        self._version = 0
        self.namespace = ""
        self.clear()

    def clear(self, namespace: str | None = None) -> None:
        """Forget every stream (another namespace was chosen)."""
        with self._lock:
            if namespace is not None:
                self.namespace = namespace
            self._envelope: Ring | None = None
            self._envelope_meta: tuple = ()
            self._envelope_step = 1
            self._joints: Ring | None = None
            self._joint_names: list[str] = []
            self._joint_scale = np.ones(0)
            self._joint_units: list[str] = []
            self._joint_gate = RateGate(self.points_per_second)
            self._joint_count = 0
            self._assist: dict | None = None
            self._diagnostics: dict[str, dict] = {}
            self._version += 1

    # --- ingest (ROS thread) ---------------------------------------------------------------

    def on_envelope(self, data: np.ndarray, first_index: int, stamp: float, rate: float,
                    channel_names: list[str], unit: str) -> None:
        """A SignalChunk: data samples x channels, stamp = capture time of its first sample."""
        meta = (tuple(channel_names), unit, rate)
        with self._lock:
            if meta != self._envelope_meta or self._envelope is None:
                self._envelope_meta = meta
                self._envelope_step = decimation_step(rate, self.points_per_second)
                self._envelope = Ring(self._capacity, len(channel_names))
            rows = picked_rows(first_index, len(data), self._envelope_step)
            if len(rows):
                period = 1.0 / rate if rate > 0 else 0.0
                self._envelope.add(first_index + rows, stamp + rows * period, data[rows])
                self._version += 1

    def on_joints(self, names: list[str], positions, stamp: float) -> None:
        """A JointState (rad / m): kept at about points_per_second by stamp, shown in degrees
        and millimetres."""
        with self._lock:
            if names != self._joint_names or self._joints is None:
                shown = dof_display(list(names), None)
                self._joint_names = list(names)
                self._joint_units = [d["unit"] for d in shown]
                self._joint_scale = np.array([d["scale"] for d in shown])
                self._joints = Ring(self._capacity, len(names))
                self._joint_gate = RateGate(self.points_per_second)
            index = self._joint_count
            self._joint_count += 1
            if self._joint_gate.due(stamp):
                values = np.asarray(positions, dtype=float)[None, :] * self._joint_scale
                self._joints.add(np.array([index]), np.array([stamp]), values)
                self._version += 1

    def on_assist(self, state: dict) -> None:
        """An AssistState as a dict (state, reason, joint_names, command, target, ...)."""
        with self._lock:
            self._assist = dict(state, received=self._clock())
            self._version += 1

    def on_diagnostics(self, statuses: list[dict]) -> None:
        """DiagnosticStatus of this namespace's nodes: name, level, message, values."""
        with self._lock:
            now = self._clock()
            for status in statuses:
                self._diagnostics[status["name"]] = dict(status, received=now)
            self._version += 1

    # --- GUI thread --------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> Snapshot:
        with self._lock:
            envelope = StreamView()
            mvc = None
            if self._envelope is not None:
                names, unit, _ = self._envelope_meta
                envelope = StreamView(list(names), unit, *self._envelope.rows())
                if is_mvc_fraction(unit):
                    envelope.values = envelope.values * 100.0
                    envelope.unit = "% MVC"
                    if len(envelope.values):
                        mvc = envelope.values[-1].copy()
            joints = StreamView()
            if self._joints is not None:
                joints = StreamView(list(self._joint_names), ",".join(self._joint_units),
                                    *self._joints.rows())
            diagnostics = [dict(s) for _, s in sorted(self._diagnostics.items())]
            return Snapshot(self._version, self.namespace, envelope, mvc, joints,
                            dict(self._assist) if self._assist else None, diagnostics)


# Topics the package publishes, relative to a namespace: a topic of a biosig_ros type ending
# in one of these names tells its namespace.
KNOWN_TOPICS = ("emg/raw", "emg/envelope", "emg/aux", "vicon/analog", "markers",
                "ik/joint_states", "ik/marker_residuals", "ik/quality", "assist/state")


def namespaces_of(topics: list[tuple[str, list[str]]]) -> list[str]:
    """Namespaces that have biosig_ros topics, from (topic name, types) pairs: "/" for the
    root, "/subject1" ... sorted."""
    found = set()
    for name, types in topics:
        if not any(t.startswith("biosig_ros/") for t in types):
            continue
        for known in KNOWN_TOPICS:
            if name.endswith("/" + known):
                found.add(name[:-len(known) - 1] or "/")
                break
        else:
            found.add(name.rsplit("/", 1)[0] or "/")
    return sorted(found)


def stream_rows(statuses: list[dict]) -> list[dict]:
    """Rows of the streams table from the namespace's diagnostics: per node its level and
    message, with the values that describe a stream's health (rates, gaps, delays) picked out
    by their key."""
    rows = []
    for status in statuses:
        values = status.get("values", {})
        picked = {key: value for key, value in values.items()
                  if any(word in key for word in ("rate", "gap", "delay", "lost", "missing",
                                                  "dropped", "age"))}
        rows.append({"node": status["name"], "level": status.get("level", 0),
                     "message": status.get("message", ""), "health": picked})
    return rows
