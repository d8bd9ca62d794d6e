"""Build a ROS 2 launch description from a graph of biosig_ros.graph_spec.

Imported only by the files in launch/ (launch and launch_ros exist on a real ROS 2 install,
not in the PyPI-wheel environment; there, `python -m biosig_ros.graph` starts the same graph).
"""
from __future__ import annotations

import os

from biosig_ros.graph_spec import GRAPHS
from biosig_ros.paths import PACKAGE


def launch_description_for(graph_name: str):
    """One launch_ros Node per ROS node of the graph (params from share/biosig_ros/config),
    one ExecuteProcess per simulator."""
    from ament_index_python.packages import get_package_prefix, get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import ExecuteProcess
    from launch_ros.actions import Node

    share = get_package_share_directory(PACKAGE)
    executables = os.path.join(get_package_prefix(PACKAGE), "lib", PACKAGE)
    actions = []
    for spec in GRAPHS[graph_name]:
        if spec.is_ros_node:
            actions.append(Node(
                package=PACKAGE, executable=spec.executable, name=spec.name, output="screen",
                parameters=[os.path.join(share, "config", name) for name in spec.params]))
        else:
            actions.append(ExecuteProcess(
                name=spec.name, output="screen",
                cmd=[os.path.join(executables, spec.executable),
                     *(arg.replace("{share}", share) for arg in spec.arguments)]))
    return LaunchDescription(actions)
