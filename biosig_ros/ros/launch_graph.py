"""Build a ROS 2 launch description from a graph of biosig_ros.graph_spec.

Imported only by the files in launch/ (launch and launch_ros exist on a real ROS 2 install,
not in the PyPI-wheel environment; there, `python -m biosig_ros.graph` starts the same graph).
Works with Humble and later: DeclareLaunchArgument per graph argument, then an OpaqueFunction
that reads their values and creates the nodes, so that an argument left empty leaves the
parameter files in charge and a given one is applied after them.
"""
from __future__ import annotations

import os

from biosig_ros.discovery import shared_memory_risk
from biosig_ros.graph_spec import (CONFIG_ERROR_STATUS, GRAPHS, RESPAWN_DELAY_S,
                                   graph_arguments, node_overrides, started,
                                   swapped_params_files)
from biosig_ros.paths import PACKAGE


def launch_description_for(graph_name: str):
    """The graph's arguments, then its nodes (respawned RESPAWN_DELAY_S after they die; a
    node exiting with the configuration-error status shuts the launch down instead)."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    share = get_package_share_directory(PACKAGE)
    declared = []
    for argument in graph_arguments(graph_name):
        default = argument.default
        if argument.name.endswith("_params_file") and default:
            default = os.path.join(share, "config", default)
        declared.append(DeclareLaunchArgument(
            argument.name, default_value=default, description=argument.description))
    return LaunchDescription(declared + [OpaqueFunction(
        function=_graph_actions, args=[graph_name, share])])


def _graph_actions(context, graph_name: str, share: str):
    from ament_index_python.packages import get_package_prefix
    from launch.actions import ExecuteProcess, LogInfo, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    values = {argument.name: LaunchConfiguration(argument.name).perform(context)
              for argument in graph_arguments(graph_name)}
    namespace = values.pop("namespace")
    params_files = {name[:-len("_params_file")]: values.pop(name)
                    for name in list(values) if name.endswith("_params_file")}
    per_node = node_overrides(graph_name, values)
    swapped = swapped_params_files(graph_name, values)
    executables = os.path.join(get_package_prefix(PACKAGE), "lib", PACKAGE)
    # Launch files leave the DDS environment to the user; they name the one known trap.
    risk = shared_memory_risk(os.environ)
    actions = [LogInfo(msg=f"biosig_ros: {risk}")] if risk else []
    for spec in GRAPHS[graph_name]:
        if not started(spec, values):
            continue
        given = per_node.get(spec.name, {})
        if spec.is_ros_node:
            files = [os.path.join(share, "config", name) for name in spec.params]
            if spec.name in swapped:
                files[:1] = [os.path.join(share, "config", swapped[spec.name])]
            given_file = params_files.get(spec.name)
            if given_file and given_file != _shipped(share, spec):
                files[:1] = [given_file]
            # ROS arguments (--log-level) go on the command line, the rest are parameters.
            ros_arguments = [word for key, value in given.items() if key.startswith("--")
                             for word in (key, str(value))]
            given = {key: value for key, value in given.items() if not key.startswith("--")}
            # Typed explicitly: launch would read a string such as "1" as YAML (an integer).
            parameters = files + ([{key: ParameterValue(value, value_type=type(value))
                                    for key, value in given.items()}] if given else [])
            action = Node(
                package=PACKAGE, executable=spec.executable, name=spec.name,
                namespace=namespace or None, output="screen", parameters=parameters,
                arguments=["--ros-args", *ros_arguments] if ros_arguments else None,
                respawn=True, respawn_delay=RESPAWN_DELAY_S)
        else:
            options = [word for key, value in given.items() for word in (key, str(value))]
            action = ExecuteProcess(
                name=spec.name, output="screen", respawn=True, respawn_delay=RESPAWN_DELAY_S,
                cmd=[os.path.join(executables, spec.executable),
                     *(arg.replace("{share}", share) for arg in spec.arguments), *options])
        actions.append(action)
        actions.append(RegisterEventHandler(OnProcessExit(
            target_action=action, on_exit=_shutdown_on_config_error(spec.name))))
    return actions


def _shipped(share: str, spec) -> str:
    return os.path.join(share, "config", spec.params[0]) if spec.params else ""


def _shutdown_on_config_error(name: str):
    from launch.actions import Shutdown

    def on_exit(event, context):
        if event.returncode == CONFIG_ERROR_STATUS:
            return [Shutdown(reason=f"{name}: configuration error (exit status "
                                    f"{CONFIG_ERROR_STATUS}); not restarting it")]
        return None
    return on_exit
