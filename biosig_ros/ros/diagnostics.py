"""Periodic diagnostic_msgs/DiagnosticArray publishing on /diagnostics."""
from __future__ import annotations

import threading
import time
from collections import deque

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from biosig_ros.ros.node_context import node_seconds, status_name

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE


class Diagnostics:
    """One diagnostic status per node, republished every `period` seconds and on level change.

    The node calls set(level, message, key=value, ...) whenever it knows more; values are
    formatted with str() (floats with 4 significant digits). The status is named after the
    node with its namespace ('s1/ik'), and published on the node's clock (its timer and stamp
    follow /clock under use_sim_time).
    """

    def __init__(self, node: Node, hardware_id: str = "", period: float = 1.0):
        self._node = node
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._lock = threading.Lock()
        self._status = DiagnosticStatus(
            level=STALE, name=status_name(node), message="starting", hardware_id=hardware_id)
        self._values: dict[str, str] = {}
        self._timer = node.create_timer(period, self.publish)

    @property
    def level(self) -> int:
        return int.from_bytes(self._status.level, "little") if isinstance(
            self._status.level, bytes) else int(self._status.level)

    def set(self, level: int, message: str, **values) -> None:
        with self._lock:
            changed = level != self.level
            self._status.level = level
            self._status.message = message
            self._values.update({k: _format(v) for k, v in values.items()})
        if changed:
            self.publish()

    def update_values(self, **values) -> None:
        with self._lock:
            self._values.update({k: _format(v) for k, v in values.items()})

    def publish(self) -> None:
        with self._lock:
            self._status.values = [KeyValue(key=k, value=v) for k, v in self._values.items()]
            array = DiagnosticArray(status=[self._status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)


class LossWindow:
    """Losses (samples, frames, skipped work) within the last `window` seconds, so that a node
    reports WARN while it is losing data and OK again once clean. Thread-safe.

    record(count, what) notes `count` items lost on stream/kind `what`; summary() returns
    (lost within the window, POSIX time of the first loss in it or None, the kinds as text)."""

    def __init__(self, window: float = 10.0, clock=time.monotonic, wall_clock=time.time):
        self.window = window
        self.total = 0
        self._clock, self._wall_clock = clock, wall_clock
        self._events: deque[tuple[float, float, int, str]] = deque()
        self._lock = threading.Lock()

    def record(self, count: int, what: str) -> None:
        if count <= 0:
            return
        with self._lock:
            self.total += count
            self._events.append((self._clock(), self._wall_clock(), int(count), what))

    def summary(self) -> tuple[int, float | None, str]:
        with self._lock:
            horizon = self._clock() - self.window
            while self._events and self._events[0][0] < horizon:
                self._events.popleft()
            if not self._events:
                return 0, None, ""
            lost = sum(event[2] for event in self._events)
            kinds = dict.fromkeys(event[3] for event in self._events)
            return lost, self._events[0][1], ", ".join(kinds)

    def message(self) -> str:
        """'' when clean, else e.g. '120 lost in the last 10 s (emg/raw gaps) since 12:03:04'."""
        lost, since, what = self.summary()
        if not lost:
            return ""
        return (f"{lost} lost in the last {self.window:g} s ({what}) since "
                f"{time.strftime('%H:%M:%S', time.localtime(since))}")


def loss_window(node: Node, window: float = 10.0) -> LossWindow:
    """A LossWindow on the node's clock (sim time under use_sim_time)."""
    seconds = node_seconds(node)
    return LossWindow(window, clock=seconds, wall_clock=seconds)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
