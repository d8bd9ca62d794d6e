"""torque_node across processes: a probe publishes a synthetic envelope and poses (a trial from
the model itself), reads torque/muscle and torque/inverse_dynamics, and calls ~/calibrate."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ros_harness import NodeProcess, RosProbe
from sensor_msgs.msg import JointState

from biosig_ros.msg import IkQuality
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.processing.torque_channel_map import ChannelMap
from biosig_ros.processing.torque_estimator import TorqueEstimator, TorqueSettings
from biosig_ros.processing.torque_synthetic import synthetic_trial
from biosig_ros.ros.conversions import chunk_to_msg
from biosig_ros.ros.qos import output_qos
from biosig_ros.signals import SignalChunk
from biosig_ros.srv import CalibrateTorque

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod")
MAP = {"channels": {"A": ["DELT1"], "B": ["DELT2"], "C": ["DELT3"], "D": ["bic_l", "bic_s"],
                    "E": ["tric_long", "tric_lat", "tric_med"], "F": ["PECM1", "PECM2"]}}
NAMES = list(MAP["channels"])
T0 = 1_750_000_000.0
JUMP = 150  # the frame IK's quality flags as a discontinuity


def settle_discovery() -> None:
    """A publisher sees its subscriber matched before that subscriber's (best-effort) reader
    has matched it back: what is sent meanwhile is lost, and these tests pace every message
    on the node's answers (a lost pose would never be answered). The replay node waits the
    same way (settle_time)."""
    time.sleep(2.0)


def stamp(t: float) -> Time:
    sec = int(t)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)))


def test_node_publishes_the_cores_torques_and_calibrates(tmp_path):
    map_file = tmp_path / "map.yaml"
    map_file.write_text(yaml.safe_dump(MAP))
    out_file = tmp_path / "calibrated.yaml"
    # A pose waits for its own envelope sample however loaded the machine (the default 50 ms
    # would pair it with the previous sample after a stall: legitimate, but not comparable).
    params = {"model_path": MODEL, "channel_map_file": str(map_file), "window_s": 10.0,
              "pairing_wait_s": 5.0}
    trial = synthetic_trial(len(NAMES), seconds=3.0, seed=5)
    with NodeProcess("biosig_ros.nodes.torque_node", "torque", params) as node, \
            RosProbe() as probe:
        muscle = probe.subscribe(JointState, "/torque/muscle")
        inverse = probe.subscribe(JointState, "/torque/inverse_dynamics")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        qualities = probe.subscribe(DiagnosticStatus, "/torque/quality", output_qos(1000))
        envelope = probe.publisher(SignalChunkMsg, "/emg/envelope")
        poses = probe.publisher(JointState, "/ik/joint_states")
        ik_quality = probe.publisher(IkQuality, "/ik/quality", output_qos())
        for publisher in (poses, envelope, ik_quality):
            assert probe.wait_for_subscribers(publisher, timeout=90), node.output()
        settle_discovery()
        dofs = None
        for k, t in enumerate(trial.stamps):
            envelope.publish(chunk_to_msg(SignalChunk(
                trial.excitation[k][None, :], k, T0 + t, 100.0, NAMES, "")))
            # as IK does: the frame's quality, then its pose; one frame is a discontinuity
            quality = IkQuality(discontinuity=k == JUMP,
                                discontinuity_reason="test jump" if k == JUMP else "")
            quality.header.stamp = stamp(T0 + t)
            ik_quality.publish(quality)
            pose = JointState()
            pose.header.stamp = stamp(T0 + t)
            if dofs is None:
                from biosig_ros.processing.torque_model import TorqueModel
                model = TorqueModel(MODEL)
                dofs = list(model.dof_names)
            pose.name = dofs
            pose.position = trial.q[k].tolist()
            pose.velocity = trial.qdot[k].tolist()
            poses.publish(pose)
            # paced by the node's answers; a node that stops answering fails here, not after
            # a timeout per remaining frame
            assert probe.wait_until(lambda: len(inverse) >= k - 5, 60), (k, node.output())
        assert probe.wait_until(lambda: len(muscle) == len(trial.stamps), 30), (
            len(muscle), node.output())
        request = CalibrateTorque.Request(duration=2.0, output_file=str(out_file))
        response = probe.call(CalibrateTorque, "/torque/calibrate", request, timeout=60)
        assert probe.wait_until(lambda: any(
            s.name == "torque" and s.message == "estimating"
            for _, a in list(diagnostics) for s in a.status), 10), node.output()

    # The same inputs through the core give the same torques, stamped with the poses' time.
    local = TorqueEstimator(TorqueSettings(model_path=MODEL), model, ChannelMap.from_dict(MAP))
    local.set_channels(NAMES)
    expected = [local.step(T0 + t, q, qd, u, "test jump" if k == JUMP else "")
                for k, (t, q, qd, u) in enumerate(zip(trial.stamps, trial.q, trial.qdot,
                                                      trial.excitation))]
    got = sorted((m for _, m in muscle), key=lambda m: (m.header.stamp.sec,
                                                         m.header.stamp.nanosec))
    assert [m.header.stamp for m in got] == [stamp(T0 + t) for t in trial.stamps]
    assert list(got[0].name) == dofs
    for message, result in zip(got, expected):
        assert np.allclose(message.effort, result.muscle, atol=1e-9)
    # Against the truth (activations integrated at 2 kHz): the core's stated bound holds
    # through the node (0.3 N.m RMSE on the shoulder and elbow, test_torque_estimator.py).
    from biosig_ros.processing.torque_synthetic import true_muscle_torque
    truth = true_muscle_torque(model, local.groups, np.ones(len(NAMES)), trial)
    columns = [dofs.index(n) for n in ("humerus_shoulder_plane_RotX",
                                       "humerus_shoulder_ele_RotY",
                                       "humerus_shoulder_rotation_RotZ",
                                       "ulna_elbow_flexion_RotZ")]
    published = np.array([m.effort for m in got])[:, columns]
    assert np.sqrt(np.mean((published - truth[:, columns]) ** 2)) < 0.3
    got_inverse = [m for _, m in inverse]
    assert len(got_inverse) == len(trial.stamps)
    for message, result in zip(got_inverse, expected):
        assert np.allclose(message.effort, result.inverse_dynamics, atol=1e-9)
    # IK's discontinuity restarted the differentiator at that very frame, flagged; no frame
    # went without its quality
    assert not any(got_inverse[JUMP].velocity) and any(got_inverse[JUMP - 1].velocity)
    flags = {m.hardware_id: m.message for _, m in qualities}
    jump = stamp(T0 + trial.stamps[JUMP])
    assert "pose discontinuity (test jump)" in flags[f"{jump.sec}.{jump.nanosec:09d}"]
    assert sum("pose discontinuity" in text for text in flags.values()) == 1
    assert not any("ik/quality" in text for text in flags.values()), flags

    # ~/calibrate fitted, applied and saved gains with before/after figures.
    assert response is not None and response.success, response
    assert list(response.channel_names) == NAMES and len(response.gains) == len(NAMES)
    assert response.rmse_after <= response.rmse_before
    assert response.r2_after >= response.r2_before
    saved = ChannelMap.load(out_file)
    assert np.allclose(saved.gains(NAMES), response.gains)
    assert saved.notes["rmse_after"] == round(response.rmse_after, 6)


def test_a_bad_channel_map_stops_the_node_with_one_line_and_status_2(tmp_path):
    map_file = tmp_path / "bad.yaml"
    map_file.write_text("channels:\n  EMG1: [NOPE]\n")
    with NodeProcess("biosig_ros.nodes.torque_node", "torque",
                     {"model_path": MODEL, "channel_map_file": str(map_file)}) as node:
        assert node.process.wait(timeout=60) == 2, node.output()
        assert "channel EMG1 names muscle 'NOPE', which the model does not have" in node.output()


def test_torques_keep_flowing_while_a_calibration_fits(tmp_path):
    """The fit runs in a worker thread: poses sent after the node said it started fitting get
    their torques before the service answers (with the fit on the executor thread, none
    could). Counted, not timed: a long fit (20 s window with force scales) gives time for many
    round trips, and the test asks for a few."""
    map_file = tmp_path / "map.yaml"
    map_file.write_text(yaml.safe_dump(MAP))
    params = {"model_path": MODEL, "channel_map_file": str(map_file), "window_s": 30.0,
              "pairing_wait_s": 5.0, "force_scale_change": 0.3, "quality_topic": ""}
    trial = synthetic_trial(len(NAMES), seconds=40.0, seed=6)
    from biosig_ros.processing.torque_model import TorqueModel
    dofs = list(TorqueModel(MODEL).dof_names)
    with NodeProcess("biosig_ros.nodes.torque_node", "torque", params) as node, \
            RosProbe() as probe:
        muscle = probe.subscribe(JointState, "/torque/muscle")
        envelope = probe.publisher(SignalChunkMsg, "/emg/envelope")
        poses = probe.publisher(JointState, "/ik/joint_states")
        assert probe.wait_for_subscribers(poses, timeout=90), node.output()
        assert probe.wait_for_subscribers(envelope, timeout=90), node.output()
        settle_discovery()

        def send(k: int) -> None:
            envelope.publish(chunk_to_msg(SignalChunk(
                trial.excitation[k][None, :], k, T0 + trial.stamps[k], 100.0, NAMES, "")))
            pose = JointState(name=dofs, position=trial.q[k].tolist(),
                              velocity=trial.qdot[k].tolist())
            pose.header.stamp = stamp(T0 + trial.stamps[k])
            poses.publish(pose)

        def send_and_wait(k: int) -> bool:
            before = len(muscle)
            send(k)
            return probe.wait_until(lambda: len(muscle) > before, 30)

        def newest_muscle_stamp() -> float:
            return max((m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
                        for _, m in muscle[-5:]), default=0.0)

        # 21 s of paired frames kept, sent in bursts that the node's queues (50 deep) hold: a
        # burst is answered when its last frame is (the node takes poses in order) or, if that
        # one was lost (best effort), when all but two came
        k = 0
        while k < 2100:
            for _ in range(25):
                send(k)
                k += 1
            last = T0 + trial.stamps[k - 1]
            probe.wait_until(lambda: newest_muscle_stamp() >= last - 1e-6
                             or len(muscle) >= k - 2, 30)
        client = probe.node.create_client(CalibrateTorque, "/torque/calibrate")
        assert client.wait_for_service(timeout_sec=60)
        answer = client.call_async(CalibrateTorque.Request(duration=20.0))
        assert probe.wait_until(lambda: "fitting" in node.output(), 60), node.output()
        during = 0
        while not answer.done() and k < len(trial.stamps):
            if send_and_wait(k) and not answer.done():
                during += 1
            k += 1
        assert probe.wait_until(answer.done, 120), node.output()
        response = answer.result()
    assert response.success, response.message
    # Each counted pose was sent after the fit began and answered before the service was.
    assert during >= 5, (during, node.output()[-2000:])
    assert "worker thread" in node.output()
