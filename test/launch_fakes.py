"""Stand-ins of launch and launch_ros (not on PyPI) that record what a launch file asks for,
and a small evaluator that does what `ros2 launch` does with it: arguments from the command
line or an including file, declared defaults, OpaqueFunctions, GroupAction scopes,
PushRosNamespace, IncludeLaunchDescription. Keyword names follow the real APIs (Humble).
"""
from __future__ import annotations

import runpy
import sys
import types


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchDescription(Recorded):
    @property
    def entities(self):
        return list(self.args[0]) if self.args else list(self.kwargs.get("initial_entities", []))


class DeclareLaunchArgument(Recorded):
    @property
    def name(self):
        return self.args[0]


class LaunchConfiguration(Recorded):
    def perform(self, context):
        return context.configurations[self.args[0]]


class OpaqueFunction(Recorded):
    pass


class PythonLaunchDescriptionSource(Recorded):
    pass


class ParameterValue(Recorded):
    @property
    def value(self):
        return self.args[0]


class Context:
    def __init__(self, configurations):
        self.configurations = dict(configurations)


class Launched:
    """What ran: nodes (with their effective namespace), processes and exit handlers."""

    def __init__(self):
        self.nodes, self.processes, self.handlers, self.declared = [], [], [], []
        self.logs = []

    def node(self, name):
        (found,) = [n for n in self.nodes if n.kwargs["name"] == name]
        return found


def make_modules() -> dict[str, types.ModuleType]:
    modules = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.substitutions", "launch.event_handlers",
        "launch.launch_description_sources", "launch_ros", "launch_ros.actions",
        "launch_ros.parameter_descriptions")}
    modules["launch"].LaunchDescription = LaunchDescription
    actions = modules["launch.actions"]
    actions.DeclareLaunchArgument = DeclareLaunchArgument
    actions.OpaqueFunction = OpaqueFunction
    for name in ("ExecuteProcess", "RegisterEventHandler", "Shutdown", "GroupAction",
                 "IncludeLaunchDescription", "LogInfo"):
        setattr(actions, name, type(name, (Recorded,), {}))
    modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    modules["launch.event_handlers"].OnProcessExit = type("OnProcessExit", (Recorded,), {})
    modules["launch.launch_description_sources"].PythonLaunchDescriptionSource = (
        PythonLaunchDescriptionSource)
    modules["launch_ros.actions"].Node = type("Node", (Recorded,), {})
    modules["launch_ros.actions"].PushRosNamespace = type("PushRosNamespace", (Recorded,), {})
    modules["launch_ros.parameter_descriptions"].ParameterValue = ParameterValue
    return modules


def _prefix(base, namespace):
    if not namespace:
        return base
    if namespace.startswith("/") or not base:
        return namespace
    return base.rstrip("/") + "/" + namespace


def launch(description, arguments: dict | None = None) -> Launched:
    """Evaluate a description as `ros2 launch FILE name:=value ...` would."""
    launched = Launched()
    _visit(description.entities, Context(arguments or {}), launched)
    return launched


def _visit(entities, context, launched):
    for entity in entities:
        kind = type(entity).__name__
        if kind == "DeclareLaunchArgument":
            launched.declared.append(entity)
            context.configurations.setdefault(entity.name, entity.kwargs["default_value"])
        elif kind == "OpaqueFunction":
            _visit(entity.kwargs["function"](context, *entity.kwargs.get("args", [])) or [],
                   context, launched)
        elif kind == "GroupAction":
            _visit(entity.args[0], Context(context.configurations), launched)
        elif kind == "PushRosNamespace":
            context.configurations["ros_namespace"] = _prefix(
                context.configurations.get("ros_namespace"), entity.args[0])
        elif kind == "IncludeLaunchDescription":
            source = entity.args[0]
            included = runpy.run_path(source.args[0])["generate_launch_description"]()
            for name, value in entity.kwargs.get("launch_arguments", []):
                context.configurations[name] = value
            _visit(included.entities, context, launched)
        elif kind == "Node":
            entity.effective_namespace = _prefix(
                context.configurations.get("ros_namespace"), entity.kwargs.get("namespace"))
            launched.nodes.append(entity)
        elif kind == "ExecuteProcess":
            launched.processes.append(entity)
        elif kind == "LogInfo":
            launched.logs.append(entity.kwargs["msg"])
        elif kind == "RegisterEventHandler":
            launched.handlers.append(entity.args[0])
        else:
            raise AssertionError(f"unexpected launch entity {kind}")


def install(monkeypatch) -> dict[str, types.ModuleType]:
    modules = make_modules()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return modules
