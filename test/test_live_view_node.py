"""live_view_node in its own process, fed from this one (test/live_feed.py): the MarkerArray
and the per-channel envelope JointState (names, values, stamps), the page's data over HTTP,
raw EMG taken only while a browser shows it, namespaces, configuration errors."""
import json
import re
import time
import urllib.request

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker, MarkerArray

from biosig_ros.ros.conversions import time_to_seconds
from biosig_ros.ros.qos import output_qos
from biosig_ros.viewers.skeleton import Skeleton

from live_feed import WU, LiveFeed
from ros_harness import NodeProcess, RosProbe, stopped_after

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

MODULE = "biosig_ros.nodes.live_view_node"
OCCLUDED = "SCAP_IA"


@pytest.fixture
def probe():
    with RosProbe() as ros_probe:
        yield ros_probe


def start_view(probe, namespace: str = "", **params) -> tuple[NodeProcess, str]:
    node = NodeProcess(MODULE, "live_view", {"port": 0, **params}, namespace=namespace)
    assert node.wait_for_output("ready:", 60), node.output()
    url = re.search(r"http://127\.0\.0\.1:\d+/", node.output()).group(0)
    prefix = namespace.rstrip("/")
    assert probe.wait_until(
        lambda: probe.node.count_publishers(f"{prefix}/viz/markers") >= 1
        and probe.node.count_subscribers(f"{prefix}/markers") >= 1, 30), node.output()
    return node, url


def page_state(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url + "state.json", timeout=20).read())


def by_stamp(messages):
    return {round(time_to_seconds(m.header.stamp), 6): m for _, m in messages}


def test_marker_array_has_the_markers_and_the_skeleton_of_the_messages_it_stamps(probe):
    arrays = probe.subscribe(MarkerArray, "/viz/markers")
    skeleton = Skeleton.load(WU)
    node, _ = start_view(probe)
    with node:
        feed = LiveFeed(probe, channels=4, occluded=[OCCLUDED]).start()
        assert probe.wait_until(lambda: len(arrays) > 60, 60), node.output()
        feed.stop()
    sent_markers = {round(t, 6): m for t, m in feed.sent_markers.items()}
    sent_joints = {round(t, 6): q for t, q in feed.sent_joints.items()}
    names = list(feed.model.marker_names)
    sphere_stamps, checked_lines = [], 0
    for _, array in arrays:
        spheres = [m for m in array.markers if m.ns == "markers"]
        lines = [m for m in array.markers if m.ns == "skeleton"]
        assert len(spheres) == 1 and len(lines) <= 1
        sphere = spheres[0]
        assert sphere.type == Marker.SPHERE_LIST and sphere.header.frame_id == "world"
        assert sphere.text.split(",") == names
        stamp = round(time_to_seconds(sphere.header.stamp), 6)
        sphere_stamps.append(stamp)
        sent = sent_markers[stamp]
        for name, point, color, source, hidden in zip(
                names, sphere.points, sphere.colors, sent.positions, sent.occluded):
            assert np.isfinite([point.x, point.y, point.z]).all()  # RViz refuses NaN
            if name == OCCLUDED:
                assert hidden and color.a == 0.0
            else:
                assert color.a == 1.0
                assert (point.x, point.y, point.z) == (source.x, source.y, source.z)
        if lines:
            line = lines[0]
            assert line.type == Marker.LINE_LIST and len(line.points) == 2 * len(skeleton.pairs)
            q = sent_joints[round(time_to_seconds(line.header.stamp), 6)]
            expected = skeleton.line_points(skeleton.origins(q)).reshape(-1, 3)
            np.testing.assert_allclose([(p.x, p.y, p.z) for p in line.points], expected,
                                       atol=1e-9)
            checked_lines += 1
    assert checked_lines > 30
    # about 30 per second of stamp time (the gate judges stamps, not arrivals): never more
    span = sphere_stamps[-1] - sphere_stamps[0]
    assert np.all(np.diff(sphere_stamps) > 0) and len(sphere_stamps) <= 30 * span + 2


def test_envelope_channels_are_one_joint_state_per_sample_at_100_hz(probe):
    states = probe.subscribe(JointState, "/emg/envelope_channels")
    node, _ = start_view(probe)
    with node:
        feed = LiveFeed(probe, channels=16, envelope_unit="fraction of MVC").start()
        assert probe.wait_until(lambda: len(states) > 150, 60), node.output()
        feed.stop()
    index_of = {round(t, 6): i for i, t in feed.sent_stamps.items()}
    indices = []
    for _, msg in states:
        assert list(msg.name) == feed.channels
        index = index_of[round(time_to_seconds(msg.header.stamp), 6)]  # a sample's capture time
        assert index % 20 == 19  # the newest sample of each 20: 100 per second at 2 kHz
        np.testing.assert_array_equal(msg.position, feed.envelope_at(index))
        indices.append(index)
    steps = np.diff(indices)
    assert np.all(steps > 0) and np.median(steps) == 20


def test_page_data_over_http_matches_the_topics(probe):
    node, url = start_view(probe)
    with node:
        feed = LiveFeed(probe, channels=16).start()
        state = {}

        def filled():  # the page's data once it holds enough of every stream to compare
            nonlocal state
            state = page_state(url)
            return (len(state["history"]["envelope"]) > 50 and state["history"]["joints"]
                    and state["sync"]["paired"] is True)
        probe.wait_until(filled, 60, interval=0.2)  # what falls short is named below
        feed.stop()
        output = node.output()
    meta = state["meta"]
    assert meta["streams"]["envelope"]["channels"] == feed.channels
    assert meta["streams"]["envelope"]["topic"] == "/emg/envelope"
    assert meta["skeleton"]["model"] == "Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
    history = state["history"]["envelope"]
    assert len(history) > 50, output
    for index, t, values in history:
        assert values == feed.envelope_at(index).tolist()
        assert t == pytest.approx(feed.sent_stamps[index], abs=1e-6)
    joints = state["history"]["joints"]
    sent_q = {round(t, 6): q for t, q in feed.sent_joints.items()}
    for _, t, q in joints:
        assert q == sent_q[round(t, 6)].tolist()
    assert state["markers"]["occ"] == [0] * 16
    # markers and skeleton of one frame (the feed stamps both alike), lag said
    assert state["sync"]["paired"] is True and state["sync"]["lag"] >= 0.0, state["sync"]
    assert state["markers"]["t"] == state["skeleton"]["t"]
    assert state["stats"]["envelope"]["messages"] > 50


def test_raw_emg_is_taken_only_while_a_browser_shows_it(probe):
    node, url = start_view(probe)
    with node:
        feed = LiveFeed(probe, channels=2).start()
        # The node at work on the feed (its page counts envelope messages), no browser: no
        # subscription to the raw EMG
        assert probe.wait_until(
            lambda: page_state(url)["stats"]["envelope"]["messages"] > 50, 60, interval=0.2)
        assert probe.node.count_subscribers("/emg/raw") == 0
        stream = urllib.request.urlopen(url + "events?raw=1", timeout=30)
        raw_points = []
        deadline = time.monotonic() + 30
        while not raw_points and time.monotonic() < deadline:
            line = stream.readline()
            if line.startswith(b"data: "):
                raw_points = json.loads(line[6:]).get("raw") or []
        assert raw_points, node.output()
        assert probe.node.count_subscribers("/emg/raw") == 1
        index, _, low, high = raw_points[-1]
        assert len(low) == len(high) == 2 and all(a <= b for a, b in zip(low, high))
        stream.close()
        feed.stop()


def test_topic_names_follow_the_namespace(probe):
    arrays = probe.subscribe(MarkerArray, "/lab1/viz/markers")
    node, url = start_view(probe, namespace="/lab1")
    with node:
        assert probe.node.count_subscribers("/lab1/emg/envelope") >= 1
        assert probe.node.count_subscribers("/emg/envelope") == 0
        feed = LiveFeed(probe, channels=2, topics=(
            "/lab1/emg/envelope", "/lab1/emg/raw", "/lab1/markers", "/lab1/ik/joint_states"))
        feed.start()
        assert probe.wait_until(lambda: len(arrays) > 3, 30), node.output()
        feed.stop()
        state = json.loads(urllib.request.urlopen(url + "state.json", timeout=20).read())
    assert state["meta"]["streams"]["joints"]["topic"] == "/lab1/ik/joint_states"
    assert not url.endswith(":8080/"), url  # its parameters reached it (port 0)


def joint_state(names, efforts, stamp: float) -> JointState:
    msg = JointState(name=list(names), effort=list(efforts))
    msg.header.stamp.sec, nanoseconds = divmod(round(stamp * 1e9), 10**9)
    msg.header.stamp.nanosec = nanoseconds
    return msg


def test_torques_of_the_chosen_dofs_come_from_a_reliable_publisher_and_bad_ones_are_named(
        probe):
    """As torque_node publishes (reliable, volatile): the chosen DoFs' efforts at their stamps,
    a DoF the topic lacks listed; a message whose efforts do not pair with its names: a line."""
    elbow = "ulna_elbow_flexion_RotZ"
    muscle = probe.publisher(JointState, "/torque/muscle", output_qos())
    node, url = start_view(probe, model_path="", torque_dofs=[elbow, "not_a_dof"])
    with node:
        assert probe.wait_for_subscribers(muscle, timeout=30), node.output()
        sent = {}
        for k in range(60):
            stamp = 1000.0 + k / 50
            sent[round(stamp, 6)] = 10.0 + k
            muscle.publish(joint_state(["thorax_RotX", elbow], [-1.0, 10.0 + k], stamp))
            if k == 30:
                muscle.publish(joint_state(["thorax_RotX", elbow], [1.0], stamp + 0.001))
            time.sleep(0.01)  # the node's queue holds 50: a burst would overflow it

        def history():
            state = json.loads(urllib.request.urlopen(url + "state.json", timeout=20).read())
            return state, state["history"]["torque_muscle"]

        assert probe.wait_until(lambda: len(history()[1]) >= 40, 30), node.output()
        assert node.wait_for_output("torque_muscle: message ignored: 2 names, 1 efforts", 10)
        state, points = history()
    for _, t, values in points:
        assert values == [sent[round(t, 6)], None]
    meta = state["meta"]
    assert meta["torques"]["dofs"] == [elbow, "not_a_dof"]
    assert meta["streams"]["torque_muscle"]["missing"] == ["not_a_dof"]
    assert meta["streams"]["torque_muscle"]["topic"] == "/torque/muscle"
    assert state["stats"]["torque_inverse_dynamics"]["messages"] == 0  # nobody publishes it


def test_diagnostics_report_the_address_and_browsers(probe):
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    node, url = start_view(probe)
    with node:
        stream = urllib.request.urlopen(url + "events", timeout=30)

        def status():
            for _, array in reversed(diagnostics):
                for item in array.status:
                    if item.name == "live_view":
                        return {kv.key: kv.value for kv in item.values}
            return {}

        assert probe.wait_until(lambda: status().get("browsers") == "1", 30), status()
        assert status()["url"] == url
        stream.close()


BAD_CONFIGURATIONS = {
    "no such biorbd model file": {"model_path": "data/no_such_model.bioMod"},
    "refresh_rate": {"refresh_rate": 500.0},
    "private name": {"envelope_topic": "~/envelope"},
}


@pytest.fixture(scope="module")
def refused_starts():
    """The node started with each bad configuration, all at once (each stops at start-up,
    alone), by the text its line must name."""
    yield from stopped_after({
        message: NodeProcess(MODULE, f"live_view_{index}", {"port": 0, **params})
        for index, (message, params) in enumerate(BAD_CONFIGURATIONS.items())})


@pytest.mark.parametrize("message", list(BAD_CONFIGURATIONS))
def test_bad_configuration_stops_the_node_with_one_line(refused_starts, message):
    node = refused_starts[message]
    assert node.process.wait(timeout=60) == 2, node.output()
    assert message in node.output() and "Traceback" not in node.output(), node.output()
