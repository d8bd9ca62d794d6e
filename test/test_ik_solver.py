"""IK core (no ROS): model loading, marker matching, Kalman and least-squares accuracy on
synthetic trajectories from the Wu model's own forward kinematics (ground truth known)."""
import shutil

import numpy as np
import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import load_bio
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.ik_solver import IkSettings, IkSolver
from biosig_ros.processing.ik_synthetic import WU_NEUTRAL, synthetic_trajectory
from biosig_ros.processing.marker_matching import MarkerMatcher, parse_name_map
from biosig_ros.signals import MarkerFrame

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
WU_DOFS = [
    "thorax_TransX", "thorax_TransY", "thorax_TransZ", "thorax_RotX", "thorax_RotY",
    "thorax_RotZ", "clavicle_sternoclavicular_r1_RotX", "clavicle_sternoclavicular_r2_RotY",
    "scapula_rotation_transform_RotX", "scapula_rotation_transform_RotY",
    "scapula_rotation_transform_RotZ", "humerus_shoulder_plane_RotX",
    "humerus_shoulder_ele_RotY", "humerus_shoulder_rotation_RotZ", "ulna_elbow_flexion_RotZ"]
WU_MARKERS = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom", "SCAP_AA",
              "EPICl", "EPICm", "DELT", "ARMl", "STYLu", "LARM_elb", "STYLr"]
CONVERGED = 100  # frames (1 s at 100 Hz) excluded from the accuracy figures


@pytest.fixture(scope="module")
def model():
    return load_model(WU)


@pytest.fixture(scope="module")
def trajectory(model):
    """10 s of shoulder movement at 100 Hz with 1 mm marker noise (std per axis)."""
    return synthetic_trajectory(model, seconds=10.0, frame_rate=100.0, noise=0.001, seed=0)


def run(solver, frames):
    return [solver.step(frame) for frame in frames]


def rmse_deg(q, truth, model):
    error = np.sqrt(((q - truth) ** 2).mean(axis=0))
    return np.degrees(error[model.rotational])


def wrapped_error_deg(q, truth):
    return np.degrees(np.abs((q - truth + np.pi) % (2 * np.pi) - np.pi))


# --- model -------------------------------------------------------------------------------

def test_wu_model_names_ranges_and_rotations(model):
    assert list(model.dof_names) == WU_DOFS
    assert list(model.marker_names) == WU_MARKERS
    assert model.rotational.tolist() == [False] * 3 + [True] * 12
    assert model.q_min[14] == -1.0 and model.q_max[14] == 3.0  # elbow flexion range in the file
    q = WU_NEUTRAL
    # markers() and the Jacobian agree (finite differences)
    step = 1e-6
    numeric = np.stack([(model.markers(q + step * e) - model.markers(q - step * e)).ravel()
                        / (2 * step) for e in np.eye(model.nb_q)], axis=1)
    np.testing.assert_allclose(model.markers_jacobian(q), numeric, atol=1e-6)


def test_missing_model_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.bioMod"
    with pytest.raises(ConfigError, match="model_path: no such biorbd model file: .*nowhere.bioMod"):
        load_model(missing)
    with pytest.raises(ConfigError, match="nowhere.bioMod"):
        IkSolver(IkSettings(model_path=str(missing)))


def test_model_without_its_geometry_folder_says_so(tmp_path):
    copy = tmp_path / "wu.bioMod"
    shutil.copy(resolve_data_path(WU), copy)
    with pytest.raises(ConfigError) as error:
        load_model(copy)
    assert str(copy) in str(error.value)
    assert "Geometry/" in str(error.value) and "thorax_decimate.vtp" in str(error.value)
    shutil.copytree(resolve_data_path("data/Geometry"), tmp_path / "Geometry")
    assert load_model(copy).nb_q == 15


def test_invalid_model_file_is_named(tmp_path):
    bad = tmp_path / "bad.bioMod"
    bad.write_text("this is not a model\n")
    with pytest.raises(ConfigError, match=r"model_path: cannot load biorbd model .*bad\.bioMod"):
        load_model(bad)


@pytest.mark.parametrize("values, parameter", [
    (dict(method="kalmann"), "method"),
    (dict(marker_units="inch"), "marker_units"),
    (dict(kalman_noise_factor=0.0), "kalman_noise_factor"),
    (dict(divergence_frames=0), "divergence_frames"),
    (dict(model_path=""), "model_path"),
])
def test_bad_settings_name_the_parameter(values, parameter):
    with pytest.raises(ConfigError, match=f"'{parameter}'"):
        IkSettings(**values)


@pytest.mark.parametrize("values, text", [
    (dict(marker_name_map=["STER"]), "'marker_name_map': entry 'STER' is not 'incoming=model'"),
    (dict(marker_name_map=["head=HEAD"]), "'marker_name_map': entry 'head=HEAD' maps to 'HEAD'"),
    (dict(min_visible_markers=4), "'min_visible_markers' must be at least 5"),
    (dict(min_visible_markers=17), "'min_visible_markers' (17) exceeds"),
])
def test_settings_checked_against_the_model(model, values, text):
    with pytest.raises(ConfigError) as error:
        IkSolver(IkSettings(**values), model)
    assert text in str(error.value)


# --- marker matching ------------------------------------------------------------------------

def test_matcher_reorders_by_name_and_hides_occluded():
    matcher = MarkerMatcher(["A", "B", "C", "D"], parse_name_map(["c_vicon=C"], "ABCD"))
    positions = np.array([[1.0, 1, 1], [2, 2, 2], [0, 0, 0], [4, 4, 4], [5, 5, 5]])
    matched = matcher.match(["D", "c_vicon", "B", "A", "E"], positions,
                            occluded=[False, False, False, True, False])
    # D=row 0, C=row 1, B=row 2 (zeros: occluded), A=row 3 (flagged), E unknown
    np.testing.assert_array_equal(matched.positions[2], [2, 2, 2])
    np.testing.assert_array_equal(matched.positions[3], [1, 1, 1])
    assert np.isnan(matched.positions[:2]).all()
    assert matched.visible.tolist() == [False, False, True, True]
    assert matcher.reports() == [
        "incoming marker(s) not in the model, ignored (map them with marker_name_map "
        "'incoming=model' if they are model markers): E"]
    matcher.match(["D", "c_vicon", "B", "A", "E"], positions)
    assert matcher.reports() == []  # reported once


def test_matcher_reports_missing_and_duplicated_once():
    matcher = MarkerMatcher(["A", "B", "C"], zero_is_occluded=False)
    positions = np.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]])
    matched = matcher.match(["A", "B", "B"], positions)
    np.testing.assert_array_equal(matched.positions[:2], [[0, 0, 0], [1, 1, 1]])
    assert matched.visible.tolist() == [True, True, False]
    assert matcher.reports() == [
        "model marker(s) not in the incoming stream, treated as occluded: C",
        "marker name(s) given more than once in a frame, first one used: B"]
    matcher.match(["B", "A", "B"], positions)  # new layout, same problems: no new report
    assert matcher.reports() == []


# --- accuracy on synthetic trajectories -----------------------------------------------------

def test_kalman_rmse_below_one_degree(model, trajectory):
    solver = IkSolver(IkSettings(method="kalman"), model)
    results = run(solver, (trajectory.frame(i) for i in range(len(trajectory.q))))
    assert [r.event for r in results if r.event] == ["initialised"]
    assert results[0].event == "initialised"
    q = np.array([r.q for r in results])[CONVERGED:]
    truth = trajectory.q[CONVERGED:]
    assert rmse_deg(q, truth, model).max() < 1.0
    translation = np.sqrt(((q - truth)[:, :3] ** 2).mean(axis=0))
    assert translation.max() < 0.001
    # Velocities and accelerations come with the filter; velocity error below the motion's.
    qdot = np.array([r.qdot for r in results])[CONVERGED:]
    true_qdot = np.gradient(trajectory.q, axis=0)[CONVERGED:] * trajectory.frame_rate
    assert np.sqrt(((qdot - true_qdot) ** 2).mean()) < np.radians(30)
    assert all(r.qddot is not None and np.isfinite(r.qddot).all() for r in results)
    # Residuals: 1 mm noise per axis -> about 1.6 mm per marker
    mean_residual = np.mean([r.mean_residual for r in results[CONVERGED:]])
    assert 0.0010 < mean_residual < 0.0025
    assert solver.state.reinitialisations == 0


def test_least_squares_rmse_below_two_degrees(model, trajectory):
    solver = IkSolver(IkSettings(method="least_squares"), model)
    results = run(solver, (trajectory.frame(i) for i in range(len(trajectory.q))))
    assert [r.event for r in results if r.event] == ["initialised"]
    q = np.array([r.q for r in results])
    assert rmse_deg(q[CONVERGED:], trajectory.q[CONVERGED:], model).max() < 2.0
    assert all(r.qddot is None for r in results)
    # velocity: backward difference of the solved poses at the frame rate
    np.testing.assert_allclose(results[50].qdot, (q[50] - q[49]) * 100.0, rtol=1e-9)
    np.testing.assert_array_equal(results[0].qdot, np.zeros(15))


@pytest.mark.parametrize("method, during_limit, after_limit", [
    ("kalman", 2.5, 1.0),
    pytest.param("least_squares", 4.0, 2.0, marks=pytest.mark.slow)])  # test/tiers.py
def test_one_marker_occluded_for_one_second(model, trajectory, method, during_limit,
                                            after_limit):
    """SCAP_IA (the scapula marker whose loss hurts most) hidden for frames 300-399: NaN for
    the first half, flagged occluded with a stale position for the second half. Unoccluded,
    that window's worst RMSE is 1.0 deg (Kalman) and 1.6 deg (least squares); hidden, the
    scapula is less constrained (1.7 and 3.1 deg) but nothing diverges, and the error after
    it is the unoccluded run's."""
    hidden = WU_MARKERS.index("SCAP_IA")
    solver = IkSolver(IkSettings(method=method), model)
    results = []
    for i in range(len(trajectory.q)):
        frame = trajectory.frame(i)
        if 300 <= i < 350:
            frame.positions[hidden] = np.nan
        elif 350 <= i < 400:
            stale = frame.positions.copy()
            stale[hidden] = [0.3, 0.3, 0.3]  # far from the truth: must be ignored
            frame = MarkerFrame(stale, frame.marker_names, i, frame.stamp, 100.0,
                                occluded=np.arange(16) == hidden)
        results.append(solver.step(frame))
    during = results[300:400]
    assert all(np.isnan(r.residuals[hidden]) and r.visible_markers == 15 for r in during)
    assert all(np.isfinite(r.residuals[np.arange(16) != hidden]).all() for r in during)
    assert solver.state.reinitialisations == 0
    q = np.array([r.q for r in results])
    assert rmse_deg(q[300:400], trajectory.q[300:400], model).max() < during_limit
    assert rmse_deg(q[450:], trajectory.q[450:], model).max() < after_limit
    assert np.isfinite(results[450].residuals).all()


@pytest.mark.parametrize("method", ["kalman", "least_squares"])
def test_shuffled_marker_order_is_matched_by_name(model, trajectory, method):
    rng = np.random.default_rng(3)
    ordered = IkSolver(IkSettings(method=method), model)
    shuffled = IkSolver(IkSettings(method=method), model)
    for i in range(150):
        frame = trajectory.frame(i)
        order = rng.permutation(16)  # a different order every frame
        mixed = MarkerFrame(frame.positions[order], [WU_MARKERS[k] for k in order], i,
                            frame.stamp, 100.0)
        a, b = ordered.step(frame), shuffled.step(mixed)
        np.testing.assert_array_equal(a.q, b.q)
        np.testing.assert_array_equal(a.residuals, b.residuals)
    assert shuffled.matcher.reports() == []


def test_name_map_unknown_and_missing_markers(model, trajectory):
    solver = IkSolver(IkSettings(marker_name_map=["sternum=STER"]), model)
    reports = []
    names = ["sternum"] + WU_MARKERS[1:15] + ["HEAD"]  # STYLr missing, HEAD unknown
    results = []
    for i in range(300):
        frame = trajectory.frame(i)
        positions = np.vstack([frame.positions[:15], [[1.0, 2.0, 3.0]]])
        results.append(solver.step(MarkerFrame(positions, names, i, frame.stamp, 100.0)))
        reports += solver.matcher.reports()
    assert reports == [
        "incoming marker(s) not in the model, ignored (map them with marker_name_map "
        "'incoming=model' if they are model markers): HEAD",
        "model marker(s) not in the incoming stream, treated as occluded: STYLr"]
    assert all(np.isnan(r.residuals[15]) and np.isfinite(r.residuals[0]) for r in results)
    q = np.array([r.q for r in results])
    assert rmse_deg(q[CONVERGED:], trajectory.q[CONVERGED:300], model).max() < 1.5


def test_millimetre_input(model, trajectory):
    metres = IkSolver(IkSettings(), model)
    millimetres = IkSolver(IkSettings(marker_units="mm"), model)
    for i in range(100):
        frame = trajectory.frame(i)
        scaled = MarkerFrame(frame.positions * 1000.0, WU_MARKERS, i, frame.stamp, 100.0)
        a, b = metres.step(frame), millimetres.step(scaled)
        np.testing.assert_allclose(b.q, a.q, atol=1e-8)
        np.testing.assert_allclose(b.residuals, a.residuals, atol=1e-9)  # residuals in metres


def test_marker_at_origin_is_occluded_unless_disabled(model, trajectory):
    frame = trajectory.frame(0)
    frame.positions[5] = 0.0
    result = IkSolver(IkSettings(), model).step(frame)
    assert result.visible_markers == 15 and np.isnan(result.residuals[5])
    result = IkSolver(IkSettings(zero_is_occluded=False), model).step(frame)
    assert result.visible_markers == 16 and result.residuals[5] > 0.5


def test_too_few_markers_skip_frames_and_start_at_first_good_frame(model, trajectory):
    solver = IkSolver(IkSettings(min_visible_markers=8), model)
    results = []
    for i in range(400):
        frame = trajectory.frame(i)
        if i < 10 or 200 <= i < 230:
            frame.positions[:9] = np.nan  # 7 markers visible
        results.append(solver.step(frame))
    assert results[:10] == [None] * 10 and results[200:230] == [None] * 30
    assert results[10].event == "initialised" and results[10].frame_number == 10
    assert solver.state.frames_insufficient == 40 and solver.state.frames_solved == 360
    assert solver.state.reinitialisations == 0
    after = np.array([r.q for r in results[250:]])
    assert rmse_deg(after, trajectory.q[250:400], model).max() < 1.0


@pytest.mark.parametrize("method", ["kalman", "least_squares"])
def test_divergence_is_detected_and_reinitialised(model, trajectory, method):
    """At frame 200 the markers jump to a far pose (arm raised and rotated by 1-1.5 rad): the
    tracker loses it, the residual check restarts it within divergence_frames frames (the
    marker-jump check, which catches this jump at once, is out of the way)."""
    jumped = synthetic_trajectory(model, seconds=4.0, seed=5, neutral=WU_NEUTRAL + np.r_[
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0.8, 1.5, 1.2])
    solver = IkSolver(IkSettings(method=method, max_marker_speed=1e6), model)
    results = [solver.step(trajectory.frame(i) if i < 200 else jumped.frame(i))
               for i in range(300)]
    events = [(r.frame_number, r.event) for r in results if r.event]
    assert events == [(0, "initialised"), (204, "reinitialised")]
    assert "a fresh fit gives" in solver.state.last_event_reason
    assert results[204].mean_residual < 0.005
    q = np.array([r.q for r in results[220:]])
    assert wrapped_error_deg(q, jumped.q[220:300])[:, model.rotational].max() < 5.0
    # joint angles continue from the last trusted pose: no 2*pi jumps on restart
    assert np.abs(results[204].q - results[199].q).max() < 2.0


def test_starts_right_from_random_poses(model):
    """The bounded start fit finds the pose from the first frame alone."""
    rng = np.random.default_rng(11)
    half = np.array([0.3, 0.3, 0.3, 0.6, 0.6, 0.6, 0.2, 0.2, 0.3, 0.3, 0.3, 0.8, 0.7, 0.8, 0.6])
    for trial in range(8):
        truth = WU_NEUTRAL + rng.uniform(-1, 1, 15) * half
        frame = MarkerFrame(model.markers(truth), WU_MARKERS, 0, 0.0, 100.0)
        result = IkSolver(IkSettings(), model).step(frame)
        assert result.mean_residual < 1e-4, trial
        assert wrapped_error_deg(result.q, truth)[model.rotational].max() < 0.1, trial


# --- the recorded sample --------------------------------------------------------------------

def recording_frames(names):
    markers = load_bio(resolve_data_path("data/abd.bio"))["markers"]  # 3 x 16 x 700, mm
    return [MarkerFrame(markers[:, :, k].T, names, k, k / 100.0, 100.0)
            for k in range(markers.shape[2])]


def test_recording_tracks_from_a_cold_start(model):
    """abd.bio in mm, labelled in the recording's order (STYLu and LARM_elb swapped relative
    to the model): the generic (unscaled) model fits within a few centimetres throughout."""
    names = list(WU_MARKERS)
    names[13], names[14] = "LARM_elb", "STYLu"
    solver = IkSolver(IkSettings(marker_units="mm"), model)
    results = run(solver, recording_frames(names))
    residuals = np.array([r.mean_residual for r in results])
    assert 0.02 < residuals.min() and residuals.max() < 0.035
    assert solver.state.reinitialisations == 0
    q = np.array([r.q for r in results])
    assert np.isfinite(q).all()
    elevation = q[:, WU_DOFS.index("humerus_shoulder_ele_RotY")]
    assert np.ptp(elevation) > 0.7  # the abduction
    assert np.abs(q[:, 6:]).max() < 2.0  # shoulder and elbow angles in anatomical ranges


def test_mislabelled_markers_show_in_the_residuals(model):
    """The same recording labelled with the model's order: the swapped pair stands out."""
    results = run(IkSolver(IkSettings(marker_units="mm"), model), recording_frames(WU_MARKERS))
    median = np.median([r.residuals for r in results], axis=0)
    worst_two = sorted(np.argsort(median)[-2:])
    assert [WU_MARKERS[k] for k in worst_two] == ["STYLu", "LARM_elb"]
    assert median[worst_two].min() > 0.15 and np.delete(median, worst_two).max() < 0.05
    assert np.isfinite([r.q for r in results]).all()


def test_kalman_gives_biosiglives_joint_angles_on_the_recording(model):
    """biosiglive 2.0.3's MskFunctions BiorbdKalman (zero start, markers in the model's order)
    and ours (bounded start fit, markers matched by name, mm in) on abd.bio: within 0.01 degree
    from the first frame, identical once both filters have settled."""
    import warnings

    from biosiglive import InverseKinematicsMethods, MskFunctions

    names = list(WU_MARKERS)
    names[13], names[14] = "LARM_elb", "STYLu"
    frames = recording_frames(names)
    markers = np.stack([f.positions for f in frames], axis=-1).transpose(1, 0, 2) / 1000.0
    to_model_order = [names.index(n) for n in WU_MARKERS]
    reference = MskFunctions(str(model.path), data_buffer_size=1)
    solver = IkSolver(IkSettings(marker_units="mm"), model)
    differences = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, frame in enumerate(frames):
            q_reference, _ = reference.compute_inverse_kinematics(
                markers[:, to_model_order, k:k + 1], method=InverseKinematicsMethods.BiorbdKalman,
                kalman_freq=100)
            differences.append(solver.continuity.steps(solver.step(frame).q,
                                                       q_reference[:, -1]))
    differences = np.array(differences)  # free rotations (the thorax's) modulo 2 pi
    assert np.degrees(differences[:, 3:]).max() < 0.01
    np.testing.assert_allclose(differences[50:], 0.0, atol=1e-8)  # mm->m rounding only


def test_kalman_follows_the_motion_across_skipped_frames(model):
    """Frames solved with gaps of 0-23 skipped frames (an overloaded node): the filter's
    catch-up keeps each pose near the truth (without it: up to 19 degrees off after 20 skipped
    frames) and each published step within the true motion between the two frames plus twice
    that error; the velocity after a gap is the motion over the gap."""
    trajectory = synthetic_trajectory(model, seconds=20.0, noise=0.001, seed=4)
    rng = np.random.default_rng(1)
    frames = [0]
    while frames[-1] < len(trajectory.q) - 30:
        frames.append(frames[-1] + (1 if rng.random() < 0.5 else int(rng.integers(2, 25))))
    solver = IkSolver(IkSettings(method="kalman"), model)
    results = [(f, solver.step(trajectory.frame(f))) for f in frames]
    assert solver.state.reinitialisations == 0
    settled = [(f, r) for f, r in results if f >= 200]
    errors = [wrapped_error_deg(r.q, trajectory.q[f])[3:].max() for f, r in settled]
    excess = [(np.degrees(np.abs(r1.q - r0.q)) - np.degrees(np.abs(trajectory.q[f1]
                                                                   - trajectory.q[f0])))[3:].max()
              for (f0, r0), (f1, r1) in zip(settled, settled[1:])]
    print(f"worst error {max(errors):.2f} deg, largest step beyond the motion {max(excess):.2f}")
    assert max(errors) < 6.0 and max(excess) < 8.0
    (f0, r0), (f1, r1) = next(((a, b) for a, b in zip(settled, settled[1:])
                               if b[0] - a[0] > 10))
    np.testing.assert_allclose(r1.qdot, (r1.q - r0.q) * 100.0 / (f1 - f0), rtol=1e-9)
