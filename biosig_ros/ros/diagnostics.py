"""Periodic diagnostic_msgs/DiagnosticArray publishing on /diagnostics."""
from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from biosig_ros.devices.device_link import CONNECTING, STREAMING, LinkStatus

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE


class Diagnostics:
    """One diagnostic status per node, republished every `period` seconds and on level change.

    The node calls set(level, message, key=value, ...) whenever it knows more; values are
    formatted with str() (floats with 4 significant digits).
    """

    def __init__(self, node: Node, hardware_id: str = "", period: float = 1.0):
        self._node = node
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._lock = threading.Lock()
        self._status = DiagnosticStatus(
            level=STALE, name=f"{node.get_name()}", message="starting", hardware_id=hardware_id)
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


def link_level(status: LinkStatus) -> int:
    """Diagnostic level of a device link: OK while streaming, WARN while connecting for the
    first time, ERROR once the device has been lost or refused."""
    if status.state == STREAMING:
        return OK
    if status.state == CONNECTING and status.failures == 0:
        return WARN
    return ERROR


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
