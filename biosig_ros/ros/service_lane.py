"""A second callback lane for service handlers that wait.

Nodes spin on one SingleThreadedExecutor (node_runner): rclpy's MultiThreadedExecutor cost
several times the CPU per message here and fell behind at 100-400 messages/s. A handler that
waits for data (e.g. "record the next N seconds") would then stop the very callbacks that
deliver the data, so such services live on a small companion node with its own executor
thread, under the main node's private names (~/name).
"""
from __future__ import annotations

import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class ServiceLane:
    """Hosts services named like the owner's private ones, spun in a background thread."""

    def __init__(self, owner: Node):
        self._owner = owner
        self.node = rclpy.create_node(
            owner.get_name() + "_services", namespace=owner.get_namespace(),
            context=owner.context, use_global_arguments=False, start_parameter_services=False)
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="service-lane", daemon=True)
        self._thread.start()

    def create_service(self, srv_type, private_name: str, callback):
        """A service at the owner's `~/private_name` whose callback may block."""
        name = f"{self._owner.get_fully_qualified_name()}/{private_name}"
        return self.node.create_service(srv_type, name, callback)

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
