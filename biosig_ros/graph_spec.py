"""The node graphs of biosig_ros: which executables run, under which names, with which config,
and which arguments a user may give them.

One source of truth for both ways of starting a graph: the launch files (launch/*.launch.py,
for a real ROS 2 install, through biosig_ros/ros/launch_graph.py) and `python -m
biosig_ros.graph` (here, without launch). No ROS import here: the pip-installed core reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

# Executable name (installed in lib/biosig_ros, see scripts/) -> Python module with main().
EXECUTABLES = {
    "replay_node": "biosig_ros.nodes.replay_node",
    "topic_monitor": "biosig_ros.nodes.topic_monitor",
    "trigno_emg_node": "biosig_ros.nodes.trigno_emg_node",
    "trigno_sim": "biosig_ros.devices.trigno_simulator",
    "vicon_wire_sim": "biosig_ros.devices.vicon_wire.cli",
    "vicon_markers_node": "biosig_ros.nodes.vicon_markers_node",
    "emg_processing_node": "biosig_ros.nodes.emg_processing_node",
    "imu_processing_node": "biosig_ros.nodes.imu_processing_node",
    "ik_node": "biosig_ros.nodes.ik_node",
    "bridge_node": "biosig_ros.nodes.bridge_node",
    "mcap_recorder": "biosig_ros.nodes.mcap_recorder_node",
    "udp_amplifier_node": "biosig_ros.nodes.udp_amplifier_node",
    "udp_amplifier_sim": "biosig_ros.devices.udp_amplifier",
    "biosiglive_source_node": "biosig_ros.nodes.biosiglive_source_node",
    "assist_node": "biosig_ros.nodes.assist_node",
    "sim_exo_node": "biosig_ros.nodes.sim_exo_node",
    "live_view_node": "biosig_ros.nodes.live_view_node",
    "torque_node": "biosig_ros.nodes.torque_node",
}

# Command-line tools installed beside the executables (not part of any graph).
TOOLS = {
    "bio_convert": "biosig_ros.bridge.bio_convert",
    "bio_check": "biosig_ros.tools.bio_check",
    "assist_enable": "biosig_ros.nodes.assist_enable",
    "biosig_ros_panel": "biosig_ros.nodes.panel_app",  # the operator panel's window
}

# A node that dies is started again after this delay (launch's respawn_delay); one that exits
# with this status (a configuration error: it would fail again) stops the graph instead.
RESPAWN_DELAY_S = 2.0
CONFIG_ERROR_STATUS = 2


@dataclass(frozen=True)
class NodeSpec:
    """One process of a graph. params: files in config/ (the first one is the node's parameter
    file, replaceable by the `<name>_params_file` argument; the others are overlays applied
    after it); arguments: extra command-line words for processes that are not ROS nodes
    (simulators); "{share}" stands for the package share directory."""

    executable: str
    name: str
    params: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()
    is_ros_node: bool = True
    # A boolean argument that must be given true for this process to start ('' = always).
    started_by: str = ""


@dataclass(frozen=True)
class Target:
    """Where an argument's value goes: parameter `key` of node `node` (EVERY_NODE: of every
    ROS node of the graph), or, when key starts with "--", that command-line option of a
    process that is not a ROS node, or that ROS argument (`--ros-args --log-level LEVEL`) of a
    ROS node. offset: added to an integer value (one port base for several ports)."""

    node: str
    key: str
    offset: int = 0


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument (and graph-runner option). An empty value (the default unless given)
    leaves the parameter files in charge; a given value is applied after them."""

    name: str
    description: str
    targets: tuple[Target, ...]
    type: type = str
    default: str = ""
    # (node, file in config/): when given, that node's parameter file becomes this one.
    params_file_when_given: tuple[str, str] | None = None
    choices: tuple[str, ...] = ()  # the values a string argument accepts (empty: any)


EVERY_NODE = "*"  # Target.node: every ROS node of the graph
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def _arg(name, description, *targets, type=str, params_file_when_given=None, choices=()):
    return LaunchArgument(name, description, tuple(Target(*t) for t in targets), type,
                          params_file_when_given=params_file_when_given, choices=choices)


# Arguments that exist in a graph when the graph has the node named first in each target
# (EVERY_NODE: in every graph).
NODE_ARGUMENTS = (
    _arg("recording", "recording file (.bio, .c3d, .mcap) to replay, with config/replay.yaml "
         "(names and rates from the file) instead of the demo's; '' = data/abd.bio",
         ("replay", "file"), params_file_when_given=("replay", "replay.yaml")),
    _arg("loop", "replay: restart at the end (true/false); '' = the parameter file's",
         ("replay", "loop"), type=bool),
    _arg("speed", "replay speed factor (2.0 = twice as fast); '' = the parameter file's",
         ("replay", "speed"), type=float),
    _arg("use_sim_time", "true: the replay publishes /clock (simulated time, `speed` seconds "
         "per second) and every node runs on it (use_sim_time): rates and timeouts per "
         "simulated second; '' = false", ("replay", "publish_clock"),
         (EVERY_NODE, "use_sim_time"), type=bool),
    _arg("trigno_host", "address of the PC running the Trigno Control Utility; '' = the "
         "parameter file's", ("trigno_emg", "host")),
    _arg("trigno_port_base", "first of the five Trigno TCP ports (command, legacy EMG/aux, "
         "Avanti EMG/aux; the TCU's are 50040..50044); '' = the parameter file's",
         ("trigno_emg", "command_port"), ("trigno_emg", "emg_port", 3),
         ("trigno_emg", "aux_port", 4), ("trigno_sim", "--port-base"), type=int),
    _arg("vicon_host", "Vicon DataStream server host[:port]; '' = the parameter file's",
         ("vicon_markers", "host")),
    _arg("vicon_sim_port", "TCP port of the Vicon wire simulator (give vicon_host "
         "127.0.0.1:PORT with it); '' = 8801", ("vicon_wire_sim", "--port"), type=int),
    _arg("vicon_subject", "Vicon subject to stream; '' = the parameter file's (its '' = the "
         "first subject)", ("vicon_markers", "subject")),
    _arg("amplifier_port", "UDP port of the example amplifier and its simulator (another "
         "when 52000 is taken); '' = the parameter file's", ("udp_amplifier", "port"),
         ("udp_amplifier_sim", "--port"), type=int),
    _arg("model", "biorbd model file (.bioMod) for inverse kinematics (and the replay's "
         "marker report); '' = the parameter file's", ("ik", "model_path"),
         ("replay", "model_path")),
    _arg("port", "TCP port of the biosiglive-compatible server (0 = a free port); '' = the "
         "parameter file's", ("bridge", "port"), type=int),
    _arg("bind_address", "address the biosiglive-compatible server listens on (0.0.0.0 = "
         "every interface); '' = the parameter file's", ("bridge", "bind_address")),
    _arg("record", "record to a .bio file from the start (true/false); '' = the parameter "
         "file's", ("bridge", "record_on_start"), type=bool),
    _arg("record_directory", "directory of the recordings (.bio and .mcap); '' = the "
         "recorders' default ($ROS_HOME/biosig_ros/recordings)", ("bridge", "record_directory"),
         ("mcap_recorder", "record_directory")),
    _arg("record_mcap", "also record the graph's topics to MCAP (the rosbag2 format that "
         "Foxglove and PlotJuggler open) with an mcap_recorder node (true/false); '' = false",
         ("mcap_recorder", "record_on_start"), type=bool),
    _arg("live_view_port", "TCP port of the live view's web page (0 = a free port); '' = the "
         "parameter file's (8080)", ("live_view", "port"), type=int),
    _arg("frame_prefix", "prefix of the IK segment frames on /tf ({namespace} = the graph's "
         "namespace); '' = the parameter file's ('{namespace}/': s1/thorax in namespace s1)",
         ("ik", "tf_prefix")),
    _arg("realtime_priority", "SCHED_FIFO priority (1-99) of the nodes between the devices and "
         "a robot's command (the replay or the device nodes, emg_processing, ik, torque, "
         "assist): on a busy PC they run before everything else (needs CAP_SYS_NICE or an "
         "rtprio limit; refused: a warning); '' = the parameter files' (0: normal scheduling)",
         *((node, "realtime_priority") for node in ("ik", "emg_processing", "replay",
                                                    "vicon_markers", "trigno_emg", "torque",
                                                    "assist")),
         type=int),
    _arg("log_level", "log level of every node (debug, info, warn, error, fatal); '' = info",
         (EVERY_NODE, "--log-level"), choices=LOG_LEVELS),
)

NAMESPACE_ARGUMENT = LaunchArgument(
    "namespace", "ROS namespace of every node of the graph (topics and services move with "
    "it); '' = none", ())


# Every graph runs the same processing chain behind its sources.
PROCESSING = (
    NodeSpec("emg_processing_node", "emg_processing", ("emg_processing.yaml",)),
    NodeSpec("ik_node", "ik", ("ik_wu.yaml",)),
    NodeSpec("bridge_node", "bridge", ("bridge.yaml",)),
)
# MCAP recording of the graph's topics, only when asked for (record_mcap:=true); the device
# graphs also record the Trigno's aux channels.
MCAP_RECORDER = NodeSpec("mcap_recorder", "mcap_recorder", ("mcap_recorder.yaml",),
                         started_by="record_mcap")
DEVICES_MCAP_RECORDER = replace(MCAP_RECORDER,
                                params=MCAP_RECORDER.params + ("mcap_recorder_devices.yaml",))
MONITOR = NodeSpec("topic_monitor", "monitor", ("monitor.yaml",))
# The browser page (and the MarkerArray / per-channel JointState for ROS viewers).
LIVE_VIEW = NodeSpec("live_view_node", "live_view", ("live_view.yaml",))

# The main job: the biosiglive example chain on the shipped recording.
DEMO = (NodeSpec("replay_node", "replay", ("replay_abd.yaml",)),) + PROCESSING + (
    MONITOR, LIVE_VIEW, MCAP_RECORDER)

# data/abd.bio's markers in file order (a .bio carries no names; config/vicon_sim.yaml has
# the same list for the in-process stand-in).
ABD_RECORDING_MARKERS = ("STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom",
                         "SCAP_AA", "EPICl", "EPICm", "DELT", "ARMl", "LARM_elb", "STYLu",
                         "STYLr")

# The device nodes against their simulators (no hardware): same processing chain.
SIMULATED_DEVICES = (
    NodeSpec("trigno_sim", "trigno_sim", (), ("--recording", "{share}/data/abd.bio", "--loop"),
             is_ros_node=False),
    NodeSpec("trigno_emg_node", "trigno_emg", ("trigno_emg.yaml",)),
    # Vicon's own client library (backend sdk) against a server speaking Vicon's protocol.
    NodeSpec("vicon_wire_sim", "vicon_wire_sim", (), (
        "{share}/data/abd.bio", "--subject", "abd", "--port", "8801", "--marker-names",
        ",".join(ABD_RECORDING_MARKERS)), is_ros_node=False),
    NodeSpec("vicon_markers_node", "vicon_markers", ("vicon_markers.yaml", "vicon_sim.yaml",
                                                     "vicon_wire_sim.yaml")),
) + PROCESSING + (MONITOR, LIVE_VIEW, DEVICES_MCAP_RECORDER)

# The lab: real Trigno TCU and Vicon server (addresses in the config files or arguments).
LAB = (
    NodeSpec("trigno_emg_node", "trigno_emg", ("trigno_emg.yaml",)),
    NodeSpec("vicon_markers_node", "vicon_markers", ("vicon_markers.yaml",)),
) + PROCESSING + (DEVICES_MCAP_RECORDER,)

# The custom-device example (docs/custom_device.md): the UDP amplifier and its simulator.
CUSTOM_DEVICE = (
    NodeSpec("udp_amplifier_sim", "udp_amplifier_sim", (), ("--port", "52000"),
             is_ros_node=False),
    NodeSpec("udp_amplifier_node", "udp_amplifier", ("udp_amplifier.yaml",)),
    NodeSpec("topic_monitor", "monitor", ("monitor_amplifier.yaml",)),
)

# EMG-driven assistance of a simulated elbow exoskeleton on the shipped recording: replay ->
# EMG processing (a low-delay envelope) -> IK -> assist -> simulated exo, and EMG + IK -> joint
# torques (muscle model and inverse dynamics). The assist node starts
# disabled: enable it with its ~/enable service (std_srvs/SetBool).
EXO_DEMO = (
    NodeSpec("replay_node", "replay", ("replay_abd.yaml",)),
    NodeSpec("emg_processing_node", "emg_processing",
             ("emg_processing.yaml", "emg_processing_exo.yaml")),
    NodeSpec("ik_node", "ik", ("ik_wu.yaml",)),
    NodeSpec("torque_node", "torque", ("torque.yaml",)),
    NodeSpec("assist_node", "assist", ("assist.yaml",)),
    NodeSpec("sim_exo_node", "sim_exo", ("sim_exo.yaml",)),
    NodeSpec("topic_monitor", "monitor", ("monitor.yaml", "monitor_exo.yaml")),
)

GRAPHS = {"demo": DEMO, "simulated_devices": SIMULATED_DEVICES, "lab": LAB,
          "custom_device": CUSTOM_DEVICE, "exo_demo": EXO_DEMO}


def params_file_argument(spec: NodeSpec) -> LaunchArgument:
    """The `<node>_params_file` argument of a ROS node (default: its shipped file)."""
    return LaunchArgument(
        f"{spec.name}_params_file", f"parameter file of the {spec.name} node ({spec.executable})"
        + (f"; applied before {', '.join(spec.params[1:])}" if len(spec.params) > 1 else ""),
        (), str, spec.params[0] if spec.params else "")


def graph_arguments(graph: str) -> tuple[LaunchArgument, ...]:
    """Every argument of a graph in the order `ros2 launch --show-args` lists them."""
    nodes = GRAPHS[graph]
    names = {spec.name for spec in nodes}
    arguments = [NAMESPACE_ARGUMENT]
    arguments += [params_file_argument(spec) for spec in nodes if spec.is_ros_node]
    arguments += [argument for argument in NODE_ARGUMENTS
                  if argument.targets[0].node in names | {EVERY_NODE}]
    return tuple(arguments)


def started(spec: NodeSpec, values: dict[str, str]) -> bool:
    """Whether the process runs with these argument values (its started_by argument true)."""
    if not spec.started_by:
        return True
    text = values.get(spec.started_by, "")
    argument = next(a for a in NODE_ARGUMENTS if a.name == spec.started_by)
    return text != "" and convert_argument(argument, text)


def convert_argument(argument: LaunchArgument, text: str):
    """A given argument's value as the type of its parameter (ValueError naming it)."""
    if argument.type is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"argument '{argument.name}' must be true or false, got {text!r}")
        return lowered == "true"
    if argument.choices and text not in argument.choices:
        raise ValueError(f"argument '{argument.name}' must be one of "
                         f"{', '.join(argument.choices)}, got {text!r}")
    try:
        return argument.type(text)
    except ValueError:
        kind = {int: "an integer", float: "a number"}.get(argument.type, argument.type.__name__)
        raise ValueError(f"argument '{argument.name}' must be {kind}, got {text!r}") from None


def swapped_params_files(graph: str, values: dict[str, str]) -> dict[str, str]:
    """{node: file in config/} for the given arguments that change a node's parameter file."""
    swapped = {}
    for argument in graph_arguments(graph):
        if values.get(argument.name) and argument.params_file_when_given:
            node, params_file = argument.params_file_when_given
            swapped[node] = params_file
    return swapped


def node_overrides(graph: str, values: dict[str, str]) -> dict[str, dict]:
    """Per process of the graph, the values of the given (non-empty) arguments:
    {node: {parameter or --option: value}}. Unknown names raise ValueError."""
    arguments = {argument.name: argument for argument in graph_arguments(graph)}
    overrides: dict[str, dict] = {}
    for name, text in values.items():
        if name not in arguments:
            raise ValueError(f"graph '{graph}' has no argument '{name}' (it has: "
                             f"{', '.join(arguments)})")
        argument = arguments[name]
        if text == "" or not argument.targets:
            continue
        value = convert_argument(argument, text)
        for target in argument.targets:
            nodes = ([spec.name for spec in GRAPHS[graph] if spec.is_ros_node]
                     if target.node == EVERY_NODE else [target.node])
            for node in nodes:
                overrides.setdefault(node, {})[target.key] = (
                    value + target.offset if target.offset else value)
    return overrides
