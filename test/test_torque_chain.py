"""The whole node chain on a trial whose truth is known (processing/torque_forward.py): the
model's own muscles move the arm; its EMG and markers, written to a .bio, go
replay -> emg_processing (causal 7 Hz envelope, the trial's MVC) -> ik (Kalman) -> torque_node,
each in its own process. torque/muscle and torque/inverse_dynamics are paired with the truth by
their stamps; ~/calibrate, started from deliberately mis-set gains, brings them back.

The bounds (docs/nodes/torque_node.md, "Validation"): the muscle torque's error is the 7 Hz
envelope's noise (a random carrier: about 10 % of the level) times the channels' torque per
activation; the test computes it for this very trial through the ROS-free chain (the same
envelope, the true pose) and allows the nodes 25 % + 0.15 N.m more (IK's pose and velocity,
envelope samples paired by stamp). Inverse dynamics: within 0.3 N.m (the 6 Hz differentiating
filters' lag on slow motion, IK's error)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ros_harness import NodeProcess, RosProbe, shipped_parameters
from sensor_msgs.msg import JointState

from biosig_ros.msg import MarkerSet
from biosig_ros.processing.emg_offline import causal_envelope
from biosig_ros.processing.emg_pipeline import EmgPipelineSettings
from biosig_ros.processing.torque_channel_map import ChannelMap
from biosig_ros.processing.torque_estimator import TorqueEstimator, TorqueSettings
from biosig_ros.processing.torque_forward import (ForwardTrialSettings, carrier_mvc,
                                                  channel_groups, forward_trial,
                                                  marker_trajectories, replay_parameters,
                                                  write_bio)
from biosig_ros.processing.torque_model import TorqueModel
from biosig_ros.processing.torque_synthetic import true_muscle_torque
from biosig_ros.ros.qos import output_qos
from biosig_ros.srv import CalibrateTorque

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod")
MAP = {"channels": {"A": ["DELT1"], "B": ["DELT2"], "C": ["DELT3"], "D": ["bic_l", "bic_s"],
                    "E": ["tric_lat", "tric_med"]}}
NAMES = list(MAP["channels"])
TRUE_GAINS = np.array([1.0, 0.8, 1.2, 0.9, 1.1])
MIS_SET = np.array([1.5, 0.7, 1.3, 0.6, 1.4])
ENVELOPE = dict(envelope="lowpass", lowpass_hz=7.0, lowpass_order=2)  # emg_processing_exo.yaml
SECONDS = 14.0
CALIBRATION_S = 9.0


def _seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def rmse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((a - b) ** 2, axis=0))


def core_chain_rmse(model, trial, gains, frames) -> np.ndarray:
    """Per free DoF, the RMSE against the truth of the ROS-free chain at the true pose."""
    channel_map = ChannelMap.from_dict(MAP).with_gains(NAMES, gains, {})
    envelope = causal_envelope(trial.emg, EmgPipelineSettings(
        sample_rate=trial.settings.emg_rate, **ENVELOPE, mvc=list(trial.mvc),
        channel_count=len(NAMES)))
    per_frame = round(trial.settings.emg_rate / trial.settings.frame_rate)
    estimator = TorqueEstimator(TorqueSettings(model_path=MODEL), model, channel_map)
    estimator.set_channels(NAMES)
    muscle = np.array([estimator.step(t, q, qd, envelope[k * per_frame]).muscle for k, (t, q, qd)
                       in enumerate(zip(trial.stamps, trial.q, trial.qdot))])
    truth = true_muscle_torque(model, estimator.groups, gains, trial)
    return rmse(muscle[frames][:, trial.free], truth[frames][:, trial.free])


def expected_mvc(settings: ForwardTrialSettings) -> np.ndarray:
    """The trial's MVC before the trial is simulated (torque_forward: the carrier's scale per
    channel x its mean rectified band-passed level); checked against the trial's own below."""
    scale = settings.emg_scale_v * (1.0 + np.arange(len(NAMES)) / 4.0)
    return scale * carrier_mvc(settings.emg_rate)


def test_the_node_chain_recovers_known_torques_and_calibrates_known_gains(tmp_path):
    model = TorqueModel(MODEL)
    channel_map = ChannelMap.from_dict(MAP)
    settings = ForwardTrialSettings(seconds=SECONDS)
    map_file = tmp_path / "map.yaml"
    map_file.write_text(yaml.safe_dump(
        channel_map.with_gains(NAMES, TRUE_GAINS * MIS_SET, {}).to_dict()))
    free_dofs = list(settings.free_dofs)
    torque_params = {"model_path": MODEL, "channel_map_file": str(map_file),
                     "calibration_dofs": free_dofs, "window_s": 30.0,
                     # a pose waits for its own envelope sample however loaded the machine
                     "pairing_wait_s": 5.0}
    mvc = expected_mvc(settings)
    emg_params = shipped_parameters("emg_processing.yaml", **ENVELOPE, publish_rate=100.0,
                                    mvc=[float(v) for v in mvc])
    # max_lag: every frame solved however loaded the machine (skipping is tested elsewhere)
    ik_params = shipped_parameters("ik_wu.yaml", model_path=MODEL, publish_tf=False,
                                   max_lag=5.0)

    # The nodes start while the trial is simulated (both take seconds); the replay, which
    # needs the recording, after: it waits for emg_processing and ik to listen.
    with RosProbe() as probe, \
            NodeProcess("biosig_ros.nodes.torque_node", "torque", torque_params) as torque, \
            NodeProcess("biosig_ros.nodes.emg_processing_node", "emg_processing",
                        emg_params) as emg, \
            NodeProcess("biosig_ros.nodes.ik_node", "ik", ik_params) as ik:
        # reliable, as the node publishes: a probe slowed by a loaded machine loses nothing
        muscle = probe.subscribe(JointState, "/torque/muscle", output_qos(2000))
        inverse = probe.subscribe(JointState, "/torque/inverse_dynamics", output_qos(2000))
        frames_seen = probe.subscribe(MarkerSet, "/markers")
        trial = forward_trial(model, channel_map, TRUE_GAINS, settings)
        assert np.allclose(trial.mvc, mvc, rtol=1e-12), (trial.mvc, mvc)
        markers, marker_names = marker_trajectories(MODEL, trial.q)
        recording = tmp_path / "forward_trial.bio"
        write_bio(recording, trial, markers)
        replay_params = shipped_parameters(
            "replay_abd.yaml", **replay_parameters(recording, trial, marker_names, MODEL),
            subject="forward_trial", wait_for_nodes=["emg_processing", "ik"],
            wait_timeout=120.0)
        assert torque.wait_for_output("ready:", 120), torque.output()
        with NodeProcess("biosig_ros.nodes.replay_node", "replay", replay_params) as replay:
            outputs = lambda: "\n".join(p.output()[-1500:] for p in (torque, emg, ik, replay))  # noqa: E731
            assert probe.wait_until(lambda: len(frames_seen) > 0, 180), outputs()
            first = frames_seen[0][1]
            start = _seconds(first.header) - first.frame_number / trial.settings.frame_rate

            def played() -> float:
                return max((_seconds(m.header) for _, m in list(muscle)), default=start) - start

            # ~/calibrate once CALIBRATION_S s of frames (after the first second) are kept.
            assert probe.wait_until(lambda: played() > 1.0 + CALIBRATION_S + 0.3, 120), \
                outputs()
            response = probe.call(CalibrateTorque, "/torque/calibrate",
                                  CalibrateTorque.Request(duration=CALIBRATION_S), timeout=120)
            answered = time.time()
            assert probe.wait_until(lambda: played() >= SECONDS - 0.3, 120), outputs()
            time.sleep(0.5)  # the last frames in flight (counted below, not timed)

    # Pair every output with the truth by its stamp (frame index on the replay's clock).
    def by_frame(received):
        table = {}
        for _, message in list(received):
            k = int(round((_seconds(message.header) - start) * trial.settings.frame_rate))
            if 0 <= k < len(trial.stamps):
                table[k] = (np.array(message.effort), _seconds(message.header))
        return table

    muscle_frames, inverse_frames = by_frame(muscle), by_frame(inverse)

    def missing(table) -> list[tuple[int, int]]:
        """The frames a topic lacks, as (first, last) runs: which stage lost them."""
        runs: list[tuple[int, int]] = []
        for k in sorted(set(range(len(trial.stamps))) - set(table)):
            if runs and runs[-1][1] == k - 1:
                runs[-1] = (runs[-1][0], k)
            else:
                runs.append((k, k))
        return runs

    assert len(muscle_frames) > 0.9 * len(trial.stamps), (
        len(muscle_frames), "muscle lacks", missing(muscle_frames), "inverse lacks",
        missing(inverse_frames), "calibration answered at", answered - start,
        torque.output()[-2000:])
    free = trial.free
    groups = channel_groups(model, channel_map, NAMES)
    before_truth = true_muscle_torque(model, groups, TRUE_GAINS * MIS_SET, trial)
    after_truth = true_muscle_torque(model, groups, TRUE_GAINS, trial)
    settled = 100  # the envelope's and the differentiator's first second

    # Calibration: every mis-set gain comes back within 10 % of the truth.
    assert response.success, response.message
    recovered = np.array(response.gains) / TRUE_GAINS
    print(f"calibration from gains x {MIS_SET}: recovered / true {np.round(recovered, 3)}; "
          f"{response.message}")
    assert np.all(np.abs(recovered - 1) < 0.10), (recovered, response.message)
    assert response.rmse_after < response.rmse_before

    # torque/muscle against the known muscle torque (with the gains in force at each frame).
    before = [k for k, (_, stamp) in muscle_frames.items()
              if settled <= k and stamp < answered - 1.0]
    after = [k for k, (_, stamp) in muscle_frames.items() if stamp > answered + 0.2]
    assert len(before) > 500 and len(after) > 100, (len(before), len(after))
    for frames, truth, gains in ((before, before_truth, TRUE_GAINS * MIS_SET),
                                 (after, after_truth, TRUE_GAINS)):
        published = np.array([muscle_frames[k][0] for k in frames])[:, free]
        error = rmse(published, truth[frames][:, free])
        reference = core_chain_rmse(model, trial, gains, frames)
        print(f"torque/muscle RMSE per free DoF {np.round(error, 3)} N.m, core chain at the "
              f"true pose {np.round(reference, 3)}")
        assert np.all(error <= 1.25 * reference + 0.15), (error, reference)

    # torque/inverse_dynamics against the known net torque.
    frames = [k for k in inverse_frames if k >= settled]
    published = np.array([inverse_frames[k][0] for k in frames])[:, free]
    error = rmse(published, trial.net_torque[frames][:, free])
    print(f"torque/inverse_dynamics RMSE per free DoF {np.round(error, 3)} N.m")
    assert np.all(error < 0.3), error
