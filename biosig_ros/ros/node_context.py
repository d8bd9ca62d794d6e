"""What a node derives from its context: seconds on its own clock, and names from its namespace.

Seconds on the node's own clock are for what measures data time (rates, staleness, loss windows).

A node's clock is ROS time: wall time normally, /clock when the node runs with
`use_sim_time:=true` (a replay publishing /clock at 0.5x or 2x speed, or `ros2 bag play
--clock`). Rates and silences measured on it are per simulated second, so a replay at another
speed shows the recording's own rates and no false staleness. Processing times (solve times,
queue waits) stay on time.perf_counter / time.monotonic: they measure this machine.
"""
from __future__ import annotations

from typing import Callable

from rclpy.node import Node


def node_seconds(node: Node) -> Callable[[], float]:
    """A clock function (seconds, float) reading the node's ROS clock."""
    clock = node.get_clock()
    return lambda: clock.now().nanoseconds * 1e-9


def status_name(node: Node) -> str:
    """The node's diagnostic status name: its fully qualified name without the leading slash
    ('ik' at the root, 's1/ik' in namespace s1), so that two graphs in two namespaces publish
    distinct statuses on the shared /diagnostics."""
    return node.get_fully_qualified_name().lstrip("/")


NAMESPACE = "{namespace}"


def expand_frame_prefix(template: str, node: Node) -> str:
    """A frame prefix with NAMESPACE replaced by the node's namespace: '{namespace}/' is 's1/'
    in /s1, 'lab/s1/' in /lab/s1 and '' at the root (the default prefix of the frames a node
    names on the shared /tf, as multi-robot setups prefix theirs: s1/thorax)."""
    namespace = node.get_namespace().strip("/")
    if not namespace:
        template = template.replace(NAMESPACE + "/", "")
    return template.replace(NAMESPACE, namespace)
