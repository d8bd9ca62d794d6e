"""IK quality (no ROS): markers needed per segment, frames flagged out of range or
under-determined, frames skipped, re-initialisations; Vicon-style names and name maps."""
import numpy as np
import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.ik_quality import bodies, markers_needed
from biosig_ros.processing.ik_solver import IkSettings, IkSolver
from biosig_ros.processing.ik_synthetic import WU_NEUTRAL
from biosig_ros.processing.marker_matching import MarkerMatcher, parse_name_map
from biosig_ros.signals import MarkerFrame

from test_ik_solver import WU, WU_MARKERS


@pytest.fixture(scope="module")
def model():
    return load_model(WU)


def frames_from_poses(model, poses, noise=0.0005, seed=0, names=WU_MARKERS):
    rng = np.random.default_rng(seed)
    for index, q in enumerate(poses):
        markers = model.markers(q) + rng.normal(0, noise, (model.nb_markers, 3))
        yield MarkerFrame(markers, list(names), index, index / 100, 100.0)


@pytest.mark.parametrize("translations, rotations, needed", [
    (3, 3, 3), (0, 3, 2), (0, 2, 1), (0, 1, 1), (3, 0, 1), (1, 1, 1), (3, 1, 2), (3, 4, None),
    (0, 4, None)])
def test_markers_needed(translations, rotations, needed):
    assert markers_needed(translations, rotations) == needed


def test_wu_segments_and_the_dofs_their_markers_determine(model):
    found = {body.name: ([model.dof_names[d] for d in body.dofs],
                         [model.marker_names[m] for m in body.markers], body.needed)
             for body in bodies(model)}
    assert list(found) == ["thorax", "clavicle", "scapula", "humerus", "ulna"]
    assert found["thorax"][1:] == (["STER", "XIPH", "C7", "T10"], 3)
    # the clavicle's DoFs sit on intermediate segments without markers
    assert found["clavicle"] == (["clavicle_sternoclavicular_r1_RotX",
                                  "clavicle_sternoclavicular_r2_RotY"],
                                 ["CLAV_SC", "CLAV_AC"], 1)
    assert found["humerus"][2] == 2 and found["ulna"][2] == 1
    assert sum(len(dofs) for dofs, _, _ in found.values()) == model.nb_q  # every DoF once


@pytest.mark.parametrize("method", ["kalman", "least_squares"])
def test_out_of_range_and_underdetermined_frames_are_flagged(model, method):
    """Elbow driven from 0.5 rad to -1.4 rad (range -1..3) while tracked; then two of the four
    thorax markers and three of the four humerus markers hidden."""
    elbow = model.dof_names.index("ulna_elbow_flexion_RotZ")
    poses = np.repeat(WU_NEUTRAL[None], 400, axis=0)
    poses[100:300, elbow] = np.linspace(0.5, -1.4, 200)
    poses[300:, elbow] = -1.4
    frames = list(frames_from_poses(model, poses))
    hidden = [WU_MARKERS.index(n) for n in ("STER", "XIPH", "EPICl", "EPICm", "DELT")]
    for frame in frames[350:]:
        frame.positions[hidden] = np.nan
        frame.occluded[hidden] = True
    solver = IkSolver(IkSettings(method=method), model)
    results = [solver.step(frame) for frame in frames]
    assert all(r is not None for r in results)
    assert results[0].event == "initialised" and results[0].frames_skipped == 0
    for r in results[:150]:  # elbow inside its range, every marker seen
        assert r.out_of_range == [] and r.underdetermined == []
    crossing = next(i for i, q in enumerate(poses[:, elbow]) if q < -1.0)
    flagged = [i for i, r in enumerate(results) if elbow in r.out_of_range]
    # flagged from the frame the solved elbow leaves the range (within a few frames of the truth)
    assert flagged and abs(flagged[0] - crossing) <= 5 and flagged == list(range(flagged[0], 400))
    assert results[280].out_of_range == [elbow]
    for r in results[350:]:
        assert r.underdetermined == ["thorax", "humerus"] and r.visible_markers == 11
    assert all(r.underdetermined == [] for r in results[:350])


def test_frames_skipped_and_reinitialisation_are_reported(model):
    poses = np.repeat(WU_NEUTRAL[None], 60, axis=0)
    frames = list(frames_from_poses(model, poses))
    solver = IkSolver(IkSettings(), model)
    kept = [*range(0, 10), *range(25, 60)]
    results = {i: solver.step(frames[i]) for i in kept}
    assert results[9].frames_skipped == 0 and results[25].frames_skipped == 15
    assert results[26].frames_skipped == 0
    frames[40].positions[:] = frames[40].positions * 2.0  # absurd markers: a fresh start
    solver.reset()
    restarted = solver.step(frames[41])
    assert restarted.event == "initialised" and restarted.event_reason == ""


# --- names as they come from Vicon ------------------------------------------------------

def test_subject_prefix_is_stripped_and_reported_once():
    matcher = MarkerMatcher(["STER", "XIPH", "C7"])
    positions = np.arange(12.0).reshape(4, 3) + 1
    matched = matcher.match(["Jane:XIPH", "Jane:STER", "Jane:HEAD", "C7"], positions)
    np.testing.assert_array_equal(matched.positions, positions[[1, 0, 3]])
    assert matcher.subjects == ["Jane"]
    assert matcher.reports() == [
        "marker names carry a subject prefix (Vicon), matched without it: Jane",
        "incoming marker(s) not in the model, ignored (map them with marker_name_map "
        "'incoming=model' if they are model markers): Jane:HEAD"]
    matcher.match(["Jane:XIPH", "Jane:STER", "Jane:HEAD", "C7"], positions)
    assert matcher.reports() == []


def test_prefix_stripping_can_be_turned_off_and_maps_win():
    positions = np.ones((2, 3))
    off = MarkerMatcher(["STER", "XIPH"], strip_subject_prefix=False)
    assert not off.match(["Jane:STER", "Jane:XIPH"], positions).visible.any()
    # a map names the prefixed or the bare name; an exact map entry wins over stripping
    mapped = MarkerMatcher(["STER", "XIPH"], parse_name_map({"Jane:STR": "STER", "XPH": "XIPH"},
                                                            ["STER", "XIPH"]))
    assert mapped.match(["Jane:STR", "Jane:XPH"], positions).visible.all()


def test_name_map_as_mapping_or_entries():
    names = ["STER", "XIPH"]
    assert parse_name_map({"a": "STER"}, names) == parse_name_map(["a=STER"], names)
    with pytest.raises(ConfigError, match="'marker_name_map': entry 'a=HEAD' maps to 'HEAD'"):
        parse_name_map({"a": "HEAD"}, names)
