"""Which executor a node spins on (ros/executors.py): the EventsExecutor where rclpy has it,
unless the node (assist, sim_exo) or BIOSIG_ROS_EXECUTOR asks for the SingleThreadedExecutor;
a wrong value is a one-line configuration error. In-process, but for the last test (node
processes)."""
import os

import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.ros.executors import (EVENTS, EXECUTOR_ENVIRONMENT, SINGLE,
                                      events_executor_class, executor_kind)


@pytest.mark.parametrize("environment, events_by_default, available, expected", [
    ({}, True, True, EVENTS),
    ({}, False, True, SINGLE),                                 # assist_node, sim_exo_node
    ({}, True, False, SINGLE),                                 # Humble, Jazzy
    ({EXECUTOR_ENVIRONMENT: "single"}, True, True, SINGLE),
    ({EXECUTOR_ENVIRONMENT: " Events "}, False, True, EVENTS),  # asked for explicitly
    ({EXECUTOR_ENVIRONMENT: "events"}, True, False, SINGLE),   # not there: the standard one
    ({EXECUTOR_ENVIRONMENT: ""}, True, True, EVENTS),
    ({"ROS_DISTRO": "jazzy"}, True, True, SINGLE),             # async services: rclpy 7.1.11
    ({"ROS_DISTRO": "jazzy", EXECUTOR_ENVIRONMENT: "events"}, True, True, EVENTS),
    ({"ROS_DISTRO": "kilted"}, True, True, EVENTS),
])
def test_the_executor_kind(environment, events_by_default, available, expected):
    assert executor_kind(environment, events_by_default, available) == expected


def test_a_wrong_value_names_the_variable_and_the_choices():
    with pytest.raises(ConfigError, match="BIOSIG_ROS_EXECUTOR='multi': expected 'single' or"):
        executor_kind({EXECUTOR_ENVIRONMENT: "multi"}, True, True)


def test_this_rclpy_has_the_events_executor():
    # The wheels here are Kilted's (no ROS_DISTRO set): the default path of every node but the
    # robot's is the EventsExecutor, and that is what the suite tests. A Humble install
    # (colcon test in a ROS team's workspace) has none: its nodes use the other.
    distro = os.environ.get("ROS_DISTRO", "")
    if distro == "humble":
        assert events_executor_class() is None
    elif distro in ("", "kilted", "rolling"):
        assert events_executor_class() is not None
    else:
        pytest.skip(f"ROS_DISTRO={distro}: the EventsExecutor came in a point release")


@pytest.mark.integration  # node processes (test/tiers.py)
def test_nodes_spin_on_their_executor_and_a_wrong_choice_stops_them_with_one_line():
    from contextlib import contextmanager

    from ros_harness import NodeProcess, stopped_after

    with contextmanager(stopped_after)({
            "events": NodeProcess("biosig_ros.nodes.emg_processing_node", "emg_processing",
                                  args=["--ros-args", "--log-level", "emg_processing:=debug"]),
            "single": NodeProcess("biosig_ros.nodes.assist_node", "assist",
                                  args=["--ros-args", "--log-level", "assist:=debug"]),
            "wrong": NodeProcess("biosig_ros.nodes.emg_processing_node", "emg_wrong",
                                 env={EXECUTOR_ENVIRONMENT: "multi"})}) as nodes:
        for kind in (EVENTS, SINGLE):
            assert nodes[kind].wait_for_output(f"spinning on the {kind} executor"), (
                nodes[kind].output()[-2000:])
        wrong = nodes["wrong"]
        assert wrong.process.wait(timeout=60) == 2, wrong.output()
        assert "BIOSIG_ROS_EXECUTOR='multi': expected 'single' or 'events'" in wrong.output()
        assert "Traceback" not in wrong.output()
