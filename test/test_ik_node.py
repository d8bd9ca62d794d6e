"""Multi-process tests of ik_node: markers published by another process, joint states received
here; the replay node feeding it from data/abd.bio; clear start-up errors."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from biosig_ros.msg import MarkerResiduals, MarkerSet
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.ik_synthetic import synthetic_trajectory
from biosig_ros.ros.conversions import frame_to_msg, time_to_seconds

from ros_harness import NodeProcess, RosProbe, shipped_parameters
from test_ik_solver import WU, WU_DOFS, WU_MARKERS

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

MODULE = "biosig_ros.nodes.ik_node"


def shipped(config: str, name: str, **overrides) -> dict:
    return shipped_parameters(config, **overrides)


@pytest.fixture
def probe():
    with RosProbe() as ros_probe:
        yield ros_probe


@pytest.fixture(scope="module")
def trajectory():
    return synthetic_trajectory(load_model(WU), seconds=3.0, noise=0.001, seed=1)


def start_ik(probe, **overrides) -> NodeProcess:
    """ik_node with config/ik_wu.yaml, connected both ways to the probe."""
    node = NodeProcess(MODULE, "ik", shipped("ik_wu.yaml", "ik", **overrides))
    assert node.wait_for_output("ready:", timeout=30), node.output()
    assert probe.wait_until(lambda: probe.node.count_subscribers("/markers") >= 1
                            and probe.node.count_publishers("/ik/joint_states") >= 1
                            and probe.node.count_publishers("/ik/marker_residuals") >= 1), (
        node.output())
    time.sleep(0.5)  # discovery matches the probe's side first: let the node's side match too
    return node


def ik_status(diagnostics: list, name: str = "ik"):
    """The ik node's latest diagnostic status as (message, {key: value}); name: its status
    name ("x/ik" for a node in namespace /x)."""
    for _, array in reversed(diagnostics):
        for status in array.status:
            if status.name == name:
                return status.message, {kv.key: kv.value for kv in status.values}
    return None, {}


def settled(probe, diagnostics, residuals, since: float, timeout: float = 15.0):
    """Wait until the node reports (in diagnostics stamped after `since`) that it solved the
    last frame it received and that frame's residuals reached the probe; return its values."""
    def done():
        for _, array in reversed(diagnostics):
            if time_to_seconds(array.header.stamp) < since:
                return False
            message, values = ik_status([(None, array)])
            if message is None:
                continue
            last = values.get("last_frame_solved")
            return (last is not None and last == values.get("last_frame_received")
                    and len(residuals) > 0 and str(residuals[-1][1].frame_number) == last)
        return False

    assert probe.wait_until(done, timeout=timeout), ik_status(diagnostics)
    return ik_status(diagnostics)[1]


def test_joint_states_from_markers_of_another_process(probe, trajectory):
    """Synthetic markers (ground truth known) from the test process, shuffled per frame and
    with one unknown extra marker: the node's JointState carries the marker stamps, the
    model's DoF names and poses within a few degrees of the truth."""
    joints = probe.subscribe(JointState, "/ik/joint_states")
    residuals = probe.subscribe(MarkerResiduals, "/ik/marker_residuals")
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    publisher = probe.publisher(MarkerSet, "/markers")
    rng = np.random.default_rng(0)
    stamp0 = 1_700_000_000.0
    with start_ik(probe) as node:
        sent = {}
        for i in range(len(trajectory.q)):
            frame = trajectory.frame(i, stamp0)
            order = rng.permutation(16)
            frame.positions = np.vstack([frame.positions[order], [[9.0, 9.0, 9.0]]])
            frame.marker_names = [WU_MARKERS[k] for k in order] + ["HEAD"]
            frame.occluded = np.zeros(17, dtype=bool)
            msg = frame_to_msg(frame, "world")
            sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = i
            publisher.publish(msg)
            time.sleep(0.01)
        values = settled(probe, diagnostics, residuals, time.time() + 0.1)
        output = node.output()
    # how many frames IK solved depends on the load (max_lag skips the rest: 35 of 700 beside
    # two busy loops, at 2x speed); enough to check the poses below
    assert len(joints) > 20, output
    solved = {sent[(m.header.stamp.sec, m.header.stamp.nanosec)]: m for _, m in joints}
    assert len(solved) == len(joints)  # each carries the stamp of a different marker frame
    truth_errors = []
    for index, msg in solved.items():
        assert list(msg.name) == WU_DOFS and msg.header.frame_id == "world"
        assert len(msg.position) == 15 and len(msg.velocity) == 15
        # after the first second, on frames whose 3 predecessors were solved too (a machine
        # under load may skip frames, after which the filter needs a few frames to settle)
        if index >= 100 and all(index - k in solved for k in (1, 2, 3)):
            error = np.degrees(np.abs(np.array(msg.position) - trajectory.q[index]))[3:]
            truth_errors.append(error.max())
    assert len(truth_errors) > 50 and max(truth_errors) < 4.0
    for _, msg in residuals:
        assert list(msg.marker_names) == WU_MARKERS
        assert 0.0005 < msg.mean_residual < 0.004
        assert np.all(np.array(msg.residuals) < 0.01)
    assert "not in the model, ignored" in output and "HEAD" in output
    assert output.count("HEAD") == 1  # reported once
    # Every frame is accounted for: solved, skipped (solver behind) or missing upstream (lost
    # before reaching the node: none on an idle machine, some under heavy CPU load).
    received, missing = int(values["frames_received"]), int(values["frames_missing_upstream"])
    assert int(values["frames_solved"]) + int(values["frames_skipped"]) == received
    assert received + missing <= len(sent)
    assert len(joints) <= int(values["frames_solved"])


def test_frame_number_gaps_and_skips_are_counted(probe, trajectory):
    """Frames 40-49 never sent, then the rest as fast as Python publishes: the gap (and what a
    burst loses in transport) is counted as missing upstream; what the solver could not keep
    up with is skipped and counted; the newest frame received is the one solved last."""
    residuals = probe.subscribe(MarkerResiduals, "/ik/marker_residuals")
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    publisher = probe.publisher(MarkerSet, "/markers")
    with start_ik(probe):
        for i in [*range(40), *range(50, 300)]:
            publisher.publish(frame_to_msg(trajectory.frame(i, 1_700_000_000.0)))
            if i < 40:
                time.sleep(0.01)
        values = settled(probe, diagnostics, residuals, time.time() + 0.1)
        first, last = int(values["first_frame_received"]), int(values["last_frame_received"])
    received = int(values["frames_received"])
    skipped, solved = int(values["frames_skipped"]), int(values["frames_solved"])
    missing = int(values["frames_missing_upstream"])
    print(f"received {received}, solved {solved}, skipped {skipped}, missing {missing}")
    assert received + missing == last - first + 1  # each frame received or counted missing
    assert missing >= 10
    assert solved + skipped == received
    assert int(values["dropped_frames"]) == skipped + missing
    assert len(residuals) <= solved and residuals[-1][1].frame_number == last


@pytest.mark.parametrize("overrides, text", [
    (dict(model_path="data/no_such_model.bioMod"),
     "model_path: no such biorbd model file: data/no_such_model.bioMod"),
    (dict(model_path="package.xml"), "model_path: cannot load biorbd model"),
    (dict(method="kalmann"), "parameter 'method' must be one of kalman, least_squares"),
    (dict(marker_name_map=["RSHO=SHOULDER"]), "'marker_name_map': entry 'RSHO=SHOULDER'"),
    (dict(pin_threads=True, pin_cpu=4096),
     "parameter 'pin_cpu': core 4096 is not available to this process"),
])
def test_bad_configuration_exits_2_with_one_clear_line(overrides, text):
    node = NodeProcess(MODULE, "ik", shipped("ik_wu.yaml", "ik", **overrides))
    assert node.process.wait(timeout=30) == 2
    output = node.output()
    assert "ik_node: configuration error: " in output and text in output
    assert "Traceback" not in output


def test_replay_node_feeds_ik_node(probe):
    """The shipped graph's pair: replay_node plays data/abd.bio's markers (mm -> m, in the
    recording's order) into ik_node, which is its only /markers subscriber (so the replay
    starts once the IK node is connected); joint states received here are sane for the
    generic model."""
    joints = probe.subscribe(JointState, "/ik/joint_states")
    residuals = probe.subscribe(MarkerResiduals, "/ik/marker_residuals")
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    with start_ik(probe) as ik:
        replay_params = shipped("replay_abd.yaml", "replay", loop=False, speed=2.0,
                                signal_key="", wait_for_subscribers=1, wait_for_nodes=[])
        with NodeProcess("biosig_ros.nodes.replay_node", "replay", replay_params) as replay:
            assert replay.wait_for_output("replay finished", timeout=40), replay.output()
            values = settled(probe, diagnostics, residuals, time.time() + 0.1)
        output = ik.output()
    print(f"ik node: {values}")
    assert values["last_frame_solved"] == "699", output
    received, missing = int(values["frames_received"]), int(values["frames_missing_upstream"])
    # every frame of the recording received or counted missing (frame 0 is received unless
    # the machine is overloaded)
    assert received + missing == 700 - int(values["first_frame_received"])
    # how many frames IK solved depends on the load (max_lag skips the rest: 35 of 700 beside
    # two busy loops, at 2x speed); enough to check the poses below
    assert len(joints) > 20, output
    # JointState and MarkerResiduals of a frame carry that marker frame's stamp
    residual_stamps = {time_to_seconds(m.header.stamp): m.frame_number for _, m in residuals}
    frame_of = [residual_stamps.get(time_to_seconds(m.header.stamp)) for _, m in joints]
    assert None not in frame_of and frame_of == sorted(frame_of)
    stamps = np.array([time_to_seconds(m.header.stamp) for _, m in residuals])
    numbers = np.array([m.frame_number for _, m in residuals])
    np.testing.assert_allclose(np.diff(stamps), np.diff(numbers) * 0.005, atol=1e-6)  # x2
    q = np.array([msg.position for _, msg in joints])
    assert all(list(m.name) == WU_DOFS for _, m in joints)
    assert np.isfinite(q).all() and np.isfinite([m.velocity for _, m in joints]).all()
    # thorax where the subject stood (metres), shoulder and elbow in anatomical ranges
    assert np.all((q[:, :3] > 0.3) & (q[:, :3] < 1.3))
    assert np.abs(q[:, 6:]).max() < 2.0
    assert np.ptp(q[:, WU_DOFS.index("humerus_shoulder_ele_RotY")]) > 0.7  # the abduction
    # The generic model fits the subject within about 3 cm; a frame after skipped ones can
    # be a little worse (the filter assumes one frame period between the frames it sees).
    mean_residuals = np.array([m.mean_residual for _, m in residuals])
    assert 0.025 < np.median(mean_residuals) < 0.032, np.percentile(mean_residuals, [0, 50, 100])
    assert mean_residuals.min() > 0.02 and mean_residuals.max() < 0.06, mean_residuals.max()
    assert "not in the" not in output  # names matched despite the recording's order
