"""Two complete demo graphs in namespaces s1 and s2 at once, across processes: each
namespace's envelopes, markers and joint states come from its own replay (told apart by
channel names, subject and frame_id; the replays also run at different speeds), the two
bridges serve and record separately, and no topic of one appears in the other. On the shared
/tf and /diagnostics, by default (no setting), the child frames are s1/<segment> and
s2/<segment> and the status names s1/<node> and s2/<node>: fully separable."""
import numpy as np
from biosiglive import Client, Message, load
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from tf2_msgs.msg import TFMessage

from biosig_ros.msg import MarkerSet, SignalChunk

from graph_harness import GraphProcess
from ros_harness import RosProbe

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

SPEEDS = {"s1": 0.5, "s2": 1.5}
# /tf is global by ROS convention: the graphs' frames are told apart by their namespace.
SHARED = {"/diagnostics", "/rosout", "/parameter_events", "/tf"}


def start(namespace, record_directory):
    channels = ",".join(f"{namespace}_{i}" for i in range(1, 11))
    return GraphProcess(
        "demo", "--namespace", namespace, "--speed", str(SPEEDS[namespace]), "--port", "0",
        "--record-directory", str(record_directory),
        "--set", f"replay.channel_names=[{channels}]", "--set", f"replay.subject={namespace}x",
        "--set", f"replay.frame_id={namespace}_world", "--set", f"ik.frame_id={namespace}_world",
        "--live-view-port", "0")


def test_two_demo_graphs_in_two_namespaces_do_not_mix(tmp_path):
    with RosProbe() as probe:
        received = {ns: {
            "envelope": probe.subscribe(SignalChunk, f"/{ns}/emg/envelope"),
            "markers": probe.subscribe(MarkerSet, f"/{ns}/markers"),
            "joints": probe.subscribe(JointState, f"/{ns}/ik/joint_states")} for ns in SPEEDS}
        unnamespaced = probe.subscribe(SignalChunk, "/emg/envelope")
        transforms = probe.subscribe(TFMessage, "/tf")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        with start("s1", tmp_path / "s1") as s1, start("s2", tmp_path / "s2") as s2:
            ports = {"s1": s1.bridge_port(), "s2": s2.bridge_port()}
            assert ports["s1"] != ports["s2"]
            flowing = probe.wait_until(lambda: all(
                len(stream) >= 100 for streams in received.values()
                for stream in streams.values()), timeout=180)
            assert flowing, ({ns: {k: len(v) for k, v in s.items()} for ns, s in received.items()},
                             s1.output()[-2000:], s2.output()[-2000:])
            nodes = probe.node.get_node_names_and_namespaces()
            # What the graphs' own nodes publish (a node of an earlier test that was killed
            # stays in the ROS graph until its DDS lease ends: the global list may hold it).
            published = {ns: {topic for name, namespace in nodes if namespace == f"/{ns}"
                              for topic, _ in probe.node.get_publisher_names_and_types_by_node(
                                  name, namespace)} for ns in SPEEDS}
            served = {ns: Client("127.0.0.1", port, client_type="TCP").get_data(
                Message(command=["proc_device_data", "marker_set_data"], nb_frame_to_get=1))
                for ns, port in ports.items()}
            graph_names = {f"{ns}/{node}" for ns in SPEEDS
                           for node in ("replay", "emg_processing", "ik", "bridge", "live_view")}
            assert probe.wait_until(lambda: graph_names <= {
                s.name for _, m in list(diagnostics) for s in m.status}, timeout=60), sorted({
                    s.name for _, m in list(diagnostics) for s in m.status})
        statuses = (s1.process.returncode, s2.process.returncode)

    assert statuses == (0, 0), (s1.output()[-2000:], s2.output()[-2000:])
    for ns in SPEEDS:
        assert {tuple(m.channel_names) for _, m in received[ns]["envelope"]} == {
            tuple(f"{ns}_{i}" for i in range(1, 11))}
        assert {m.subject for _, m in received[ns]["markers"]} == {f"{ns}x"}
        assert {m.header.frame_id for _, m in received[ns]["joints"]} == {f"{ns}_world"}
        assert "error" not in served[ns] and np.asarray(served[ns]["marker_set_data"]).size
    assert not unnamespaced
    children = {(t.header.frame_id, t.child_frame_id) for _, m in list(transforms)
                for t in m.transforms}
    by_namespace = {ns: {child.split("/", 1)[1] for parent, child in children
                         if child.startswith(f"{ns}/") and parent == f"{ns}_world"}
                    for ns in SPEEDS}
    assert by_namespace["s1"] and by_namespace["s1"] == by_namespace["s2"], by_namespace
    assert "thorax" in by_namespace["s1"]
    assert all(child.split("/", 1)[0] in SPEEDS for _, child in children), sorted(children)
    names = {s.name for _, m in list(diagnostics) for s in m.status}
    ours = {name for name in names if name.split("/", 1)[0] in SPEEDS}
    assert {n.split("/", 1)[1] for n in ours if n.startswith("s1/")} == {
        n.split("/", 1)[1] for n in ours if n.startswith("s2/")}
    # A status without a namespace could only come from another test's graph (other domain
    # runs are isolated): none of ours.
    assert not {name for name in names - ours if name.split("/")[-1] in {
        "replay", "emg_processing", "ik", "bridge", "live_view"}}, sorted(names)
    for ns in SPEEDS:
        ours = {t for t in published[ns] if t not in SHARED and not t.startswith("/_")}
        assert all(t.startswith(f"/{ns}/") for t in ours), sorted(ours)
        assert {t.split("/", 2)[2] for t in ours} >= {
            "emg/raw", "emg/envelope", "markers", "ik/joint_states"}, sorted(ours)
    graph_nodes = {(name, namespace) for name, namespace in nodes if name != "test_probe"}
    assert {namespace for _, namespace in graph_nodes} == {"/s1", "/s2"}
    assert graph_nodes >= {(n, f"/{ns}") for ns in SPEEDS
                           for n in ("replay", "emg_processing", "ik", "bridge", "monitor")}
    for ns in SPEEDS:
        (recording,) = (tmp_path / ns).glob("*.bio")
        data = load(str(recording))
        assert len(data["proc_device_data"]) > 5
        sources = data["sources"][-1]
        assert sources["proc_device_data"][0]["topic"] == f"/{ns}/emg/envelope"
        assert sources["proc_device_data"][0]["names"] == [f"{ns}_{i}" for i in range(1, 11)]
