"""Joint angles a controller can use (ROS-free core, no DDS): free rotations wrapped into
[centre - pi, centre + pi), steps beyond max_pose_step / max_translation_step flagged on the
very frame, a replay's loop restart and a source restart re-initialise and are flagged."""
import math

import numpy as np
import pytest

from biosig_ros.processing.ik_continuity import PoseContinuity, marker_jump, source_restart
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.ik_solver import IkSettings, IkSolver
from biosig_ros.processing.ik_synthetic import WU_NEUTRAL, Trajectory
from biosig_ros.signals import MarkerFrame

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
THORAX_ROTZ, ELBOW = 5, 14


@pytest.fixture(scope="module")
def model():
    return load_model(WU)


def turning_trajectory(model, start: float, end: float, seconds: float = 3.0,
                       seed: int = 0) -> Trajectory:
    """The subject turns: thorax RotZ ramps from start to end (radians, unwrapped) while the
    arm moves; 1 mm marker noise."""
    frames = int(seconds * 100)
    t = np.arange(frames)[:, None] / 100.0
    q = WU_NEUTRAL + np.r_[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.3, 0.3, 0.2, 0.3] * np.sin(
        2 * np.pi * 0.4 * t)
    q[:, THORAX_ROTZ] = np.linspace(start, end, frames)
    markers = np.stack([model.markers(qi) for qi in q])
    markers += np.random.default_rng(seed).normal(0.0, 0.001, markers.shape)
    return Trajectory(q, markers, 100.0, list(model.marker_names))


def wrapped_difference(a, b):
    return (np.asarray(a) - b + np.pi) % (2 * np.pi) - np.pi


# --- the convention and the steps --------------------------------------------------------

def test_free_rotations_are_the_full_turn_ones(model):
    continuity = PoseContinuity(model, 0.1, 0.02)
    names = [n for n, free in zip(model.dof_names, continuity.free) if free]
    # the thorax has no ranges in the file (biorbd: +-pi); the scapula's are +-6 rad
    assert names == ["thorax_RotX", "thorax_RotY", "thorax_RotZ",
                     "scapula_rotation_transform_RotX", "scapula_rotation_transform_RotY",
                     "scapula_rotation_transform_RotZ"]
    q = WU_NEUTRAL.copy()
    q[THORAX_ROTZ] = 3 * np.pi / 2
    q[ELBOW] = 2.9  # bounded: never wrapped
    wrapped, moved = continuity.wrap(q)
    assert moved and wrapped[THORAX_ROTZ] == pytest.approx(-np.pi / 2)
    assert wrapped[ELBOW] == 2.9 and np.array_equal(np.delete(wrapped, THORAX_ROTZ),
                                                    np.delete(q, THORAX_ROTZ))
    assert continuity.wrap(wrapped)[1] is False
    q[THORAX_ROTZ] = np.pi  # the interval is [-pi, pi)
    assert continuity.wrap(q)[0][THORAX_ROTZ] == pytest.approx(-np.pi)


def test_steps_beyond_the_limits_are_flagged_on_their_frame(model):
    continuity = PoseContinuity(model, max_pose_step=0.1, max_translation_step=0.02)
    first = continuity.follow(WU_NEUTRAL)
    assert first.discontinuity and first.reason == "first pose"
    q = WU_NEUTRAL.copy()
    q[ELBOW] += 0.099
    assert not continuity.follow(q).discontinuity
    q = q.copy()
    q[ELBOW] += 0.101
    flagged = continuity.follow(q)
    assert flagged.discontinuity and flagged.stepped == [ELBOW]
    assert "step of 0.101 rad in ulna_elbow_flexion_RotZ (max_pose_step 0.1)" in flagged.reason
    assert flagged.largest_rotation_step == pytest.approx(0.101)
    q = q.copy()
    q[0] += 0.03  # thorax TransX: metres
    assert continuity.follow(q).stepped == [0]
    # a wrap of a free rotation is no step
    q = q.copy()
    q[THORAX_ROTZ] = np.pi - 0.01
    continuity.follow(q)
    q = q.copy()
    q[THORAX_ROTZ] = -np.pi + 0.02
    crossing = continuity.follow(q)
    assert not crossing.discontinuity
    assert crossing.largest_rotation_step == pytest.approx(0.03)
    restarted = continuity.follow(q, "re-initialised: why")
    assert restarted.discontinuity and restarted.reason == "re-initialised: why"


def test_breaks_in_the_incoming_stream():
    assert source_restart(None, None, 0, 10.0, 100.0) == ""
    assert source_restart(41, 10.0, 42, 10.01, 100.0) == ""
    assert source_restart(41, 10.0, 41, 10.0, 100.0) == ""  # a repeated frame is no restart
    assert "frame number went back from 41 to 0" in source_restart(41, 10.0, 0, 10.01, 100.0)
    assert source_restart(41, 10.0, 42, 9.995, 100.0) == ""  # jitter within a period
    assert "stamp went back by 5.000 s" in source_restart(41, 10.0, 42, 5.0, 100.0)
    names = ["A", "B"]
    before = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]])
    assert marker_jump(None, before, 0.01, 10.0, names) == ""
    assert marker_jump(before, before + [0.09, 0, 0], 0.01, 10.0, names) == ""
    moved = before.copy()
    moved[1, 0] += 0.25
    assert "B 250 mm in 10 ms" in marker_jump(before, moved, 0.01, 10.0, names)
    assert marker_jump(before, moved, 0.03, 10.0, names) == ""  # over three frames: 8.3 m/s
    moved[1] = np.nan  # unseen: no evidence either way
    assert marker_jump(before, moved, 0.01, 10.0, names) == ""


# --- the solver on trajectories crossing +-pi, and loop restarts ---------------------------

def settings(method: str) -> IkSettings:
    """Least squares has no motion model: at 1 mm marker noise its humeral angles jitter by
    up to 0.12 rad from frame to frame (flagged, rightly, at the default max_pose_step)."""
    return IkSettings(method=method, max_pose_step=0.1 if method == "kalman" else 0.2)


def check_published(results, continuity, model):
    """Every angle in the convention and the ranges; every step beyond the limits flagged on
    its frame. Returns the flagged frame numbers."""
    q = np.array([r.q for r in results])
    free = continuity.free
    assert (q[:, free] >= -np.pi).all() and (q[:, free] < np.pi).all()
    assert not any(r.out_of_range for r in results)
    for previous, result in zip(results, results[1:]):
        beyond = continuity.steps(result.q, previous.q) > continuity.limits
        assert not beyond.any() or result.discontinuity, result.frame_number
        assert set(np.flatnonzero(beyond)) == set(result.stepped), result.frame_number
    return [r.frame_number for r in results if r.discontinuity]


@pytest.mark.parametrize("method", ["kalman", "least_squares"])
@pytest.mark.parametrize("turn", [7.0, -7.0])
def test_a_full_turn_is_continuous_modulo_two_pi(model, method, turn):
    """The subject turns around more than once (thorax RotZ over 7 rad in 6 s): published free
    rotations stay in [-pi, pi) and cross it without a flag (whichever of the two equivalent
    xyz Euler solutions the start fit took), the markers stay explained, the arm's angles
    right."""
    trajectory = turning_trajectory(model, 0.3, 0.3 + turn, seconds=6.0)
    solver = IkSolver(settings(method), model)
    results = [solver.step(trajectory.frame(i)) for i in range(len(trajectory.q))]
    assert check_published(results, solver.continuity, model) == [0]
    published = np.array([r.q[THORAX_ROTZ] for r in results])
    assert np.ptp(published) > 6.0  # both ends of [-pi, pi): it wrapped, it did not drift
    assert max(r.mean_residual for r in results[20:]) < 0.003
    assert np.degrees(np.abs(wrapped_difference(
        [r.q[ELBOW] for r in results[20:]], trajectory.q[20:, ELBOW]))).max() < 2.0
    assert solver.state.reinitialisations == 0


@pytest.mark.parametrize("method", ["kalman", "least_squares"])
def test_a_replay_loop_restart_is_flagged_on_its_frame(model, method):
    """A replay looping: frame numbers keep counting, the markers jump back to the first
    frame's (the arm and the thorax far from where they were)."""
    trajectory = turning_trajectory(model, 2.0, 3.5, seconds=2.0)  # crosses pi
    solver = IkSolver(settings(method), model)
    frames = len(trajectory.q)
    results = []
    for number in range(3 * frames):
        frame = trajectory.frame(number % frames)
        frame.frame_number, frame.stamp = number, number / 100.0
        results.append(solver.step(frame))
    flagged = check_published(results, solver.continuity, model)
    assert flagged == [0, frames, 2 * frames]
    for seam in (frames, 2 * frames):
        assert results[seam].event == "reinitialised"
        assert "markers jumped" in results[seam].discontinuity_reason
        # tracking is right again from the seam's own frame
        error = wrapped_difference(results[seam].q, trajectory.q[0])[model.rotational]
        assert np.degrees(np.abs(error)).max() < 3.0


def test_a_source_restart_is_flagged_and_tracking_restarts(model):
    """The source restarts (frame numbers and stamps back to 0) with the same pose: no jump in
    the markers, yet the frame is flagged and tracking restarted."""
    trajectory = turning_trajectory(model, 0.3, 0.5, seconds=1.0)
    solver = IkSolver(IkSettings(), model)
    results = [solver.step(trajectory.frame(i)) for i in range(100)]
    restarted = solver.step(MarkerFrame(trajectory.markers[99].copy(), trajectory.marker_names,
                                        0, 0.0, 100.0))
    assert restarted.discontinuity and restarted.event == "reinitialised"
    assert "frame number went back from 99 to 0" in restarted.discontinuity_reason
    assert not solver.step(MarkerFrame(trajectory.markers[99].copy(),
                                       trajectory.marker_names, 1, 0.01, 100.0)).discontinuity
    assert np.abs(wrapped_difference(restarted.q, results[-1].q)).max() < 0.05


def test_the_recording_looped_stays_in_the_convention(model):
    """abd.bio (thorax near gimbal lock, its RotX and RotZ wander over 3.5 rad) looped three
    times: thorax angles stay in [-pi, pi), nothing outside the ranges, the two loop restarts
    and only they (besides the start) are flagged, no unflagged step beyond max_pose_step."""
    from biosig_ros.io.bio_file import load_bio
    from biosig_ros.paths import resolve_data_path

    markers = load_bio(resolve_data_path("data/abd.bio"))["markers"]  # 3 x 16 x 700, mm
    names = list(model.marker_names)
    names[13], names[14] = "LARM_elb", "STYLu"  # the recording's order
    total = markers.shape[2]
    solver = IkSolver(IkSettings(marker_units="mm"), model)
    results = [solver.step(MarkerFrame(markers[:, :, k % total].T.copy(), names, k,
                                       k / 100.0, 100.0)) for k in range(3 * total)]
    flagged = check_published(results, solver.continuity, model)
    assert flagged == [0, total, 2 * total]
    thorax = np.array([r.q[3:6] for r in results])
    assert np.ptp(thorax[:, 0]) > 5.0  # RotX crossed the wrap point: wrapped, not drifting
    assert math.isclose(solver.settings.max_pose_step, 0.1)
