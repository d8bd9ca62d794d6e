"""The node graphs of biosig_ros: which executables run, under which names, with which config.

One source of truth for both ways of starting a graph: the launch files (launch/*.launch.py,
for a real ROS 2 install) and `python -m biosig_ros.graph` (here, without launch).
"""
from __future__ import annotations

from dataclasses import dataclass

# Executable name (installed in lib/biosig_ros, see scripts/) -> Python module with main().
EXECUTABLES = {
    "replay_node": "biosig_ros.nodes.replay_node",
    "topic_monitor": "biosig_ros.nodes.topic_monitor",
    "trigno_emg_node": "biosig_ros.nodes.trigno_emg_node",
    "trigno_sim": "biosig_ros.devices.trigno_simulator",
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
}

# Command-line tools installed beside the executables (not part of any graph).
TOOLS = {
    "bio_convert": "biosig_ros.bridge.bio_convert",
    "bio_check": "biosig_ros.tools.bio_check",
    "assist_enable": "biosig_ros.nodes.assist_enable",
}


@dataclass(frozen=True)
class NodeSpec:
    """One process of a graph. params: files in config/; arguments: extra command-line words
    for processes that are not ROS nodes (simulators); "{share}" stands for the package share
    directory."""

    executable: str
    name: str
    params: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()
    is_ros_node: bool = True


# Every graph runs the same processing chain behind its sources.
PROCESSING = (
    NodeSpec("emg_processing_node", "emg_processing", ("emg_processing.yaml",)),
    NodeSpec("ik_node", "ik", ("ik_wu.yaml",)),
    NodeSpec("bridge_node", "bridge", ("bridge.yaml",)),
)
MONITOR = NodeSpec("topic_monitor", "monitor", ("monitor.yaml",))
# The browser page (and the MarkerArray / per-channel JointState for ROS viewers).
LIVE_VIEW = NodeSpec("live_view_node", "live_view", ("live_view.yaml",))

# The main job: the biosiglive example chain on the shipped recording.
DEMO = (NodeSpec("replay_node", "replay", ("replay_abd.yaml",)),) + PROCESSING + (
    MONITOR, LIVE_VIEW)

# The device nodes against their simulators (no hardware): same processing chain.
SIMULATED_DEVICES = (
    NodeSpec("trigno_sim", "trigno_sim", (), ("--recording", "{share}/data/abd.bio", "--loop"),
             is_ros_node=False),
    NodeSpec("trigno_emg_node", "trigno_emg", ("trigno_emg.yaml",)),
    NodeSpec("vicon_markers_node", "vicon_markers", ("vicon_markers.yaml", "vicon_sim.yaml")),
) + PROCESSING + (MONITOR, LIVE_VIEW)

# The lab: real Trigno TCU and Vicon server (addresses in the config files).
LAB = (
    NodeSpec("trigno_emg_node", "trigno_emg", ("trigno_emg.yaml",)),
    NodeSpec("vicon_markers_node", "vicon_markers", ("vicon_markers.yaml",)),
) + PROCESSING

# The custom-device example (docs/custom_device.md): the UDP amplifier and its simulator.
CUSTOM_DEVICE = (
    NodeSpec("udp_amplifier_sim", "udp_amplifier_sim", (), ("--port", "52000"),
             is_ros_node=False),
    NodeSpec("udp_amplifier_node", "udp_amplifier", ("udp_amplifier.yaml",)),
    NodeSpec("topic_monitor", "monitor", ("monitor_amplifier.yaml",)),
)

# EMG-driven assistance of a simulated elbow exoskeleton on the shipped recording: replay ->
# EMG processing (a low-delay envelope) -> IK -> assist -> simulated exo. The assist node starts
# disabled: enable it with its ~/enable service (std_srvs/SetBool).
EXO_DEMO = (
    NodeSpec("replay_node", "replay", ("replay_abd.yaml",)),
    NodeSpec("emg_processing_node", "emg_processing",
             ("emg_processing.yaml", "emg_processing_exo.yaml")),
    NodeSpec("ik_node", "ik", ("ik_wu.yaml",)),
    NodeSpec("assist_node", "assist", ("assist.yaml",)),
    NodeSpec("sim_exo_node", "sim_exo", ("sim_exo.yaml",)),
    NodeSpec("topic_monitor", "monitor", ("monitor.yaml", "monitor_exo.yaml")),
)

GRAPHS = {"demo": DEMO, "simulated_devices": SIMULATED_DEVICES, "lab": LAB,
          "custom_device": CUSTOM_DEVICE, "exo_demo": EXO_DEMO}
