"""Building a node whose set-up may fail (bad parameters, a missing model file)."""
from __future__ import annotations

from typing import Callable

from rclpy.node import Node

from biosig_ros.errors import ConfigError


def setup_or_destroy(node: Node, setup: Callable[[], None]) -> None:
    """Run `setup`; if it raises, destroy the half-built node before the error leaves.

    A half-built node must not outlive rclpy's shutdown: its handles would otherwise be freed
    at interpreter exit, after the context is gone."""
    try:
        setup()
    except ConfigError:
        raise  # the runner ends the process at once (node_runner.run_node)
    except BaseException:
        node.destroy_node()
        raise
