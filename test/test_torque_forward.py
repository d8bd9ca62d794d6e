"""The forward-dynamics trial generator (processing/torque_forward.py), in process: its motion
obeys the model's dynamics under the muscle torque alone, its EMG gives back the excitations
through the package's envelope chain, its recording replays, and the core chain calibrates
mis-set gains back on it. The node chain on the same trials: test_torque_chain.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.processing.emg_offline import causal_envelope
from biosig_ros.processing.emg_pipeline import EmgPipelineSettings
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.torque_calibration import TorqueWindow, calibrate_gains
from biosig_ros.processing.torque_channel_map import ChannelMap
from biosig_ros.processing.torque_estimator import TorqueEstimator, TorqueSettings
from biosig_ros.processing.torque_forward import (ForwardTrialSettings, forward_trial,
                                                  marker_trajectories, replay_parameters,
                                                  write_bio)
from biosig_ros.processing.torque_model import TorqueModel

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod")
# Shoulder plane and elevation, elbow: each free DoF has an agonist and an antagonist channel.
MAP = {"channels": {"A": ["DELT1"], "B": ["DELT2"], "C": ["DELT3"], "D": ["bic_l", "bic_s"],
                    "E": ["tric_lat", "tric_med"]}}
TRUE_GAINS = np.array([1.0, 0.8, 1.2, 0.9, 1.1])
MIS_SET = np.array([1.5, 0.7, 1.3, 0.6, 1.4])  # the map's gains = TRUE_GAINS x these
ENVELOPE = dict(sample_rate=2000.0, envelope="lowpass", lowpass_hz=7.0, lowpass_order=2)


@pytest.fixture(scope="module")
def model():
    return TorqueModel(MODEL)


@pytest.fixture(scope="module")
def short_trial(model):
    return forward_trial(model, ChannelMap.from_dict(MAP), TRUE_GAINS,
                         ForwardTrialSettings(seconds=3.0, seed=1))


def test_the_motion_obeys_the_dynamics_under_the_muscle_torque_alone(model, short_trial):
    trial = short_trial
    free = trial.free
    fixed = np.setdiff1d(np.arange(model.nb_q), free)
    # Net torque of the simulated motion = muscle torque on the free DoFs: nothing else acts.
    assert np.allclose(trial.net_torque[:, free], trial.muscle_torque[:, free], atol=1e-6)
    assert np.ptp(trial.muscle_torque[:, free], axis=0).min() > 0.3  # the torque varies
    # The held DoFs stay put; the free ones move, within the model's ranges, and the
    # recorded velocity is the derivative of the recorded pose.
    assert np.all(trial.q[:, fixed] == trial.q[0, fixed])
    assert np.all(trial.qdot[:, fixed] == 0)
    assert np.ptp(trial.q[:, free], axis=0).min() > 0.1
    ik_model = load_model(MODEL)
    assert np.all(trial.q >= ik_model.q_min - 1e-9) and np.all(trial.q <= ik_model.q_max + 1e-9)
    assert np.abs(trial.q[:, free] - trial.desired_q).max() < 0.6  # steered, not exact
    slope = np.gradient(trial.q[:, free], trial.stamps, axis=0)
    assert np.abs(slope[2:-2] - trial.qdot[2:-2, free]).max() < 0.05
    # No muscle saturates (the calibration's linearity holds) and activations stay in range.
    assert np.all(trial.activation * trial.gains <= 1.0 + 1e-12)
    assert trial.excitation.min() >= 0.02 - 1e-12


def test_the_emg_gives_back_the_excitations_through_the_envelope_chain(short_trial):
    trial = short_trial
    envelope = causal_envelope(trial.emg, EmgPipelineSettings(
        **ENVELOPE, mvc=list(trial.mvc), channel_count=len(trial.mvc)))
    settled = slice(1000, None)  # after the filters' first half second
    ratio = envelope[settled].mean(axis=0) / trial.excitation[settled].mean(axis=0)
    assert np.all(np.abs(ratio - 1) < 0.05), ratio
    rmse = np.sqrt(np.mean((envelope[settled] - trial.excitation[settled]) ** 2, axis=0))
    assert np.all(rmse < 0.1), rmse  # the 7 Hz envelope's noise: ~10 % of the level
    # The carrier is zero-mean: the EMG itself carries no offset.
    assert np.all(np.abs(trial.emg.mean(axis=0)) < 0.05 * trial.mvc)


def test_the_recording_replays_the_trials_emg_and_model_markers(tmp_path, short_trial):
    markers, names = marker_trajectories(MODEL, short_trial.q)
    ik_model = load_model(MODEL)
    assert names == list(ik_model.marker_names)
    assert np.allclose(markers[7], ik_model.markers(short_trial.q[7]))
    path = tmp_path / "trial.bio"
    write_bio(path, short_trial, markers)
    params = replay_parameters(path, short_trial, names, MODEL)
    recording = load_recording(RecordingSettings(**{k: v for k, v in params.items()
                                                    if k != "loop"}))
    assert recording.signal.channel_names == list(MAP["channels"])
    assert np.allclose(recording.signal.data, short_trial.emg)
    assert recording.markers.marker_names == names
    assert np.allclose(recording.markers.positions, markers)


@pytest.mark.slow
def test_the_core_chain_calibrates_mis_set_gains_back(model):
    """EMG -> causal 7 Hz envelope -> estimator (true pose) -> calibration: mis-set gains come
    back within 10 % with the calibration's 1 Hz smoothing; without it the envelope's noise
    biases them (errors in the regressors), which this test shows too."""
    channel_map = ChannelMap.from_dict(MAP)
    trial = forward_trial(model, channel_map, TRUE_GAINS, ForwardTrialSettings(seconds=10.0))
    names = list(MAP["channels"])
    envelope = causal_envelope(trial.emg, EmgPipelineSettings(
        **ENVELOPE, mvc=list(trial.mvc), channel_count=len(names)))
    per_frame = round(trial.settings.emg_rate / trial.settings.frame_rate)
    excitation = envelope[::per_frame][:len(trial.stamps)]
    estimator = TorqueEstimator(TorqueSettings(model_path=MODEL), model,
                                channel_map.with_gains(names, TRUE_GAINS * MIS_SET, {}))
    estimator.set_channels(names)
    results = [estimator.step(t, q, qd, u) for t, q, qd, u in
               zip(trial.stamps, trial.q, trial.qdot, excitation)]
    settled = slice(100, None)
    window = TorqueWindow(trial.q[settled], np.array([r.muscle_qdot for r in results])[settled],
                          np.array([r.channel_activations for r in results])[settled],
                          np.array([r.inverse_dynamics for r in results])[settled],
                          np.array([r.muscle for r in results])[settled])
    dofs = list(trial.settings.free_dofs)
    smoothed = calibrate_gains(model, estimator.groups, window, dofs, smoothing_hz=1.0)
    assert np.all(np.abs(smoothed.gains / TRUE_GAINS - 1) < 0.10), smoothed.gains / TRUE_GAINS
    assert smoothed.rmse_after < smoothed.rmse_before / 3
    raw = calibrate_gains(model, estimator.groups, window, dofs)
    assert np.abs(raw.gains / TRUE_GAINS - 1).max() > 0.10  # the bias the smoothing removes
