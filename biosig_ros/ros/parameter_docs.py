"""Generated documentation: one parameter table per node (from the settings dataclasses, the
one place a parameter is described) and the launch arguments of every graph (from
graph_spec), written between markers into docs/ by tools/gen_param_docs.py.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from pathlib import Path

from biosig_ros.graph_spec import GRAPHS, graph_arguments
from biosig_ros.settings import field_default

# Executable -> the settings dataclasses its node declares (module:Class), in declaration
# order. test_parameters_across_processes checks this against the parameters of running nodes.
NODE_SETTINGS = {
    "replay_node": ("biosig_ros.io.recording:RecordingSettings",
                    "biosig_ros.nodes.replay_node:ReplayOptions"),
    "trigno_emg_node": ("biosig_ros.ros.device_node:DeviceNodeSettings",
                        "biosig_ros.devices.trigno_client:TrignoSettings"),
    "vicon_markers_node": ("biosig_ros.ros.device_node:DeviceNodeSettings",
                           "biosig_ros.devices.vicon_client:ViconSettings"),
    "emg_processing_node": ("biosig_ros.nodes.emg_processing_node:EmgProcessingNodeSettings",),
    "ik_node": ("biosig_ros.nodes.ik_node:IkNodeSettings",),
    "bridge_node": ("biosig_ros.bridge.settings:BridgeSettings",
                    "biosig_ros.bridge.legacy_server:ServerSettings",
                    "biosig_ros.bridge.bio_recorder:RecorderSettings"),
    "topic_monitor": ("biosig_ros.nodes.topic_monitor:MonitorSettings",),
    "assist_node": ("biosig_ros.nodes.assist_node:AssistSettings",),
    "sim_exo_node": ("biosig_ros.nodes.sim_exo_node:SimExoNodeSettings",),
    "imu_processing_node": ("biosig_ros.nodes.imu_processing_node:ImuProcessingSettings",),
    "torque_node": ("biosig_ros.nodes.torque_node:TorqueNodeSettings",),
    "live_view_node": ("biosig_ros.viewers.live_view:LiveViewSettings",),
    "mcap_recorder": ("biosig_ros.nodes.mcap_recorder_node:RecorderNodeSettings",
                      "biosig_ros.bridge.mcap_writer:McapSettings"),
    "udp_amplifier_node": ("biosig_ros.ros.device_node:DeviceNodeSettings",
                           "biosig_ros.devices.udp_amplifier:UdpAmplifierSettings"),
    "biosiglive_source_node": ("biosig_ros.ros.device_node:DeviceNodeSettings",
                               "biosig_ros.devices.biosiglive_source:BiosigliveSourceSettings"),
}

BEGIN, END = "<!-- parameters:begin -->", "<!-- parameters:end -->"
ARGS_BEGIN, ARGS_END = "<!-- launch-arguments:begin -->", "<!-- launch-arguments:end -->"
SHARE = "<share>"  # stands for the package share directory in the generated text


def settings_types(executable: str) -> list[type]:
    types = []
    for reference in NODE_SETTINGS[executable]:
        module, _, name = reference.partition(":")
        types.append(getattr(importlib.import_module(module), name))
    return types


def node_fields(executable: str) -> list[tuple[str, dataclasses.Field, object]]:
    """(name, field, annotation) of every parameter the node declares."""
    rows = []
    for settings_type in settings_types(executable):
        hints = typing.get_type_hints(settings_type)
        rows += [(f.name, f, hints[f.name]) for f in dataclasses.fields(settings_type) if f.init]
    return rows


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        (item,) = typing.get_args(annotation)[:1] or (str,)
        return f"{item.__name__}[]"
    if origin is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return f"{_type_name(inner[0])} (optional)"
    return getattr(annotation, "__name__", str(annotation))


def format_value(value) -> str:
    """A default as it would be written in a parameter file."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list, dict)):
        return json.dumps(value)
    text = repr(value)
    if isinstance(value, float) and "e" in text and "." not in text:
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0e{exponent}"  # YAML reads 1e-10 as a string, 1.0e-10 as a float
    return text


def _range(field: dataclasses.Field) -> str:
    bounds = field.metadata.get("range")
    if bounds is None:
        return ""
    low, high = ("" if b is None else format_value(b) for b in bounds)
    return f"{low or '-inf'} .. {high or 'inf'}"


def parameter_table(executable: str) -> str:
    """The Markdown parameter table of one node."""
    lines = ["| parameter | type | default | range | changes at run time | description |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, field, annotation in node_fields(executable):
        doc = " ".join(str(field.metadata.get("doc", "")).split()).replace("|", "\\|")
        runtime = "yes" if field.metadata.get("runtime") else "no (read at start)"
        lines.append(f"| `{name}` | {_type_name(annotation)} | "
                     f"`{format_value(field_default(field))}` | {_range(field)} | {runtime} | "
                     f"{doc} |")
    return "\n".join(lines)


def show_args(graph: str) -> str:
    """The graph's launch arguments as `ros2 launch biosig_ros GRAPH.launch.py --show-args`
    prints them (the share directory written as <share>)."""
    text = ["Arguments (pass arguments as '<name>:=<value>'):"]
    for argument in graph_arguments(graph):
        default = argument.default
        if argument.name.endswith("_params_file") and default:
            default = f"{SHARE}/config/{default}"
        text.append(f"\n    '{argument.name}':\n        {argument.description}\n"
                    f"        (default: '{default}')")
    return "\n".join(text)


def launch_arguments_section() -> str:
    parts = []
    for graph in GRAPHS:
        parts.append(f"`ros2 launch biosig_ros {graph}.launch.py --show-args`\n"
                     f"(`tools/run graph {graph} --help` lists the same as options):\n\n"
                     f"```\n{show_args(graph)}\n```")
    return "\n\n".join(parts)


def replace_between(text: str, begin: str, end: str, body: str, where: str) -> str:
    """text with what lies between the markers replaced by body (markers appended when
    absent)."""
    block = f"{begin}\n{body}\n{end}"
    if begin not in text:
        return text.rstrip("\n") + f"\n\n{where}\n\n{block}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return head + block + tail


def generated_docs(docs: Path) -> dict[Path, str]:
    """Every generated documentation file with its up-to-date content."""
    files = {}
    for executable in NODE_SETTINGS:
        path = docs / "nodes" / f"{executable}.md"
        current = path.read_text(encoding="utf-8") if path.exists() else f"# {executable}\n"
        files[path] = replace_between(
            current, BEGIN, END, parameter_table(executable),
            "## Parameters\n\nGenerated from the settings dataclasses by "
            "`tools/gen_param_docs.py` (do not edit the table by hand).")
    path = docs / "graphs.md"
    files[path] = replace_between(
        path.read_text(encoding="utf-8"), ARGS_BEGIN, ARGS_END, launch_arguments_section(),
        "## Launch arguments\n\nGenerated from `biosig_ros/graph_spec.py` by "
        "`tools/gen_param_docs.py`.")
    return files
