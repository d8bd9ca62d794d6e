"""Every output topic of every node reaches both a subscriber with ROS 2's default QoS
(reliable, keep last 10: robot_state_publisher, controllers, most user code) and a sensor-data
subscriber (best effort), across processes, in the demo and simulated_devices graphs; and no
node publishes a topic that this list does not know (so a new output gets checked too)."""
import random
import socket

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from visualization_msgs.msg import MarkerArray
from tf2_msgs.msg import TFMessage

from biosig_ros.msg import IkQuality, MarkerResiduals, MarkerSet, SignalChunk

from graph_harness import GraphProcess
from ros_harness import RosProbe

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

# graph -> {topic: (type, publishing node)}; /diagnostics is checked per node below.
OUTPUTS = {
    "demo": {
        "/emg/raw": (SignalChunk, "replay"), "/markers": (MarkerSet, "replay"),
        "/emg/envelope": (SignalChunk, "emg_processing"),
        "/ik/joint_states": (JointState, "ik"), "/ik/marker_residuals": (MarkerResiduals, "ik"),
        "/ik/quality": (IkQuality, "ik"), "/tf": (TFMessage, "ik"),
        "/viz/markers": (MarkerArray, "live_view"),
        "/emg/envelope_channels": (JointState, "live_view"),
    },
    "simulated_devices": {
        "/emg/raw": (SignalChunk, "trigno_emg"), "/emg/aux": (SignalChunk, "trigno_emg"),
        "/markers": (MarkerSet, "vicon_markers"), "/vicon/analog": (SignalChunk, "vicon_markers"),
        "/emg/envelope": (SignalChunk, "emg_processing"),
        "/ik/joint_states": (JointState, "ik"), "/ik/marker_residuals": (MarkerResiduals, "ik"),
        "/ik/quality": (IkQuality, "ik"), "/tf": (TFMessage, "ik"),
        "/viz/markers": (MarkerArray, "live_view"),
        "/emg/envelope_channels": (JointState, "live_view"),
    },
}
DIAGNOSING = {"demo": ("replay", "emg_processing", "ik", "bridge"),
              "simulated_devices": ("trigno_emg", "vicon_markers", "emg_processing", "ik",
                                    "bridge")}
QOS = {"default": QoSProfile(depth=10), "sensor_data": qos_profile_sensor_data}
ENOUGH = 20
_results: dict = {}


def free_port_base() -> int:
    """The first of five consecutive free TCP ports on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        sockets = []
        try:
            for port in range(base, base + 5):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no five consecutive free ports")


def graph_args(graph, tmp):
    args = ["--port", "0", "--record", "false", "--record-directory", str(tmp)]
    if graph == "simulated_devices":
        vicon_port = free_port_base()
        args += ["--trigno-port-base", str(free_port_base()), "--vicon-sim-port", str(vicon_port),
                 "--vicon-host", f"127.0.0.1:{vicon_port}",
                 "--set", "trigno_emg.aux_enabled=true", "--set", "vicon_markers.analog_device=EMG"]
    return args


def run_graph(graph, tmp_path_factory):
    """Start the graph once, subscribe to every output with both QoS, collect, stop."""
    if graph in _results:
        return _results[graph]
    with RosProbe() as probe:
        received = {(topic, qos): probe.subscribe(msg_type, topic, QOS[qos])
                    for topic, (msg_type, _) in OUTPUTS[graph].items() for qos in QOS}
        diagnostics = {qos: probe.subscribe(DiagnosticArray, "/diagnostics", QOS[qos])
                       for qos in QOS}

        def diagnosed(qos):
            return {status.name for _, msg in list(diagnostics[qos]) for status in msg.status}

        with GraphProcess(graph, *graph_args(graph, tmp_path_factory.mktemp(graph))) as process:
            probe.wait_until(lambda: all(len(v) >= ENOUGH for v in received.values()) and all(
                set(DIAGNOSING[graph]) <= diagnosed(qos) for qos in QOS), timeout=180)
            publishers = {}
            for topic, _ in probe.node.get_topic_names_and_types():
                nodes = {info.node_name for info in probe.node.get_publishers_info_by_topic(topic)}
                if nodes - {"test_probe"}:
                    publishers[topic] = nodes
            output = process.output()
        _results[graph] = {"received": {k: len(v) for k, v in received.items()},
                           "diagnosed": {qos: diagnosed(qos) for qos in QOS},
                           "publishers": publishers, "output": output}
    return _results[graph]


CASES = [(graph, topic, qos) for graph in OUTPUTS for topic in OUTPUTS[graph] for qos in QOS]


@pytest.mark.parametrize("graph,topic,qos", CASES)
def test_output_reaches_default_and_sensor_data_subscribers(graph, topic, qos, tmp_path_factory):
    result = run_graph(graph, tmp_path_factory)
    assert result["received"][(topic, qos)] >= ENOUGH, (
        result["received"], result["output"][-3000:])


@pytest.mark.parametrize("graph,qos", [(g, q) for g in OUTPUTS for q in QOS])
def test_diagnostics_of_every_node_reach_both_subscribers(graph, qos, tmp_path_factory):
    result = run_graph(graph, tmp_path_factory)
    assert set(DIAGNOSING[graph]) <= result["diagnosed"][qos], result["diagnosed"][qos]


@pytest.mark.parametrize("graph", OUTPUTS)
def test_no_output_is_left_unchecked(graph, tmp_path_factory):
    result = run_graph(graph, tmp_path_factory)
    # Standard topics: logs, parameter and lifecycle events (published on changes only).
    published = {topic: nodes for topic, nodes in result["publishers"].items()
                 if topic not in ("/rosout", "/parameter_events", "/diagnostics")
                 and not topic.endswith("/transition_event")}
    expected = {topic: {node} for topic, (_, node) in OUTPUTS[graph].items()}
    assert {t: n - {"test_probe"} for t, n in published.items()} == expected
