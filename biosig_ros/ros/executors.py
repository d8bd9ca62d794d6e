"""The executor a node spins on.

rclpy's EventsExecutor (C++, `rclpy.experimental`) on ROS 2 Kilted and newer (and these
wheels): the demo graph's six nodes took 57 % of a core on it against 98 % on the
SingleThreadedExecutor, whose Python loop rebuilds its wait set at every wake-up
(docs/graphs.md, "Executors"). Humble has none; Jazzy's handles the async service callbacks
that emg_processing and torque_node use only from rclpy 7.1.11 (March 2026): both keep the
SingleThreadedExecutor unless events are asked for. The nodes a robot acts on (assist_node,
sim_exo_node) keep it too unless asked: the experimental one is not on their path by default.

BIOSIG_ROS_EXECUTOR=single (or events) in the environment chooses for every node.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from rclpy.executors import Executor, SingleThreadedExecutor

from biosig_ros.errors import ConfigError

EXECUTOR_ENVIRONMENT = "BIOSIG_ROS_EXECUTOR"
SINGLE, EVENTS = "single", "events"


def events_executor_class():
    """rclpy's EventsExecutor factory, or None where this rclpy has none (Humble, Jazzy before
    rclpy 7.1.4)."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


# Distributions whose EventsExecutor is not the default (see above): ROS_DISTRO, set by a ROS
# install's setup script (the wheels here set none).
SINGLE_BY_DEFAULT_ON = ("humble", "jazzy")


def executor_kind(environment: Mapping[str, str], events_by_default: bool,
                  events_available: bool) -> str:
    """SINGLE or EVENTS: the environment's choice, else the node's default (SINGLE on
    SINGLE_BY_DEFAULT_ON); SINGLE where the EventsExecutor is missing. ConfigError (one line,
    exit 2) for another value."""
    asked = environment.get(EXECUTOR_ENVIRONMENT, "").strip().lower()
    if asked not in ("", SINGLE, EVENTS):
        raise ConfigError(f"{EXECUTOR_ENVIRONMENT}={asked!r}: expected '{SINGLE}' or "
                          f"'{EVENTS}'")
    if environment.get("ROS_DISTRO", "") in SINGLE_BY_DEFAULT_ON:
        events_by_default = False
    wanted = asked or (EVENTS if events_by_default else SINGLE)
    return EVENTS if wanted == EVENTS and events_available else SINGLE


def make_executor(events_by_default: bool = True) -> tuple[Executor, str]:
    """The executor (and its kind) for this process's node."""
    events = events_executor_class()
    kind = executor_kind(os.environ, events_by_default, events is not None)
    return (events() if kind == EVENTS else SingleThreadedExecutor()), kind
