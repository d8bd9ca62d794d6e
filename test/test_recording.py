"""ROS-free tests of recording loading and replay scheduling."""
import itertools
import pickle

import ezc3d
import numpy as np
import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.io.labels import biomod_marker_names, split_subject
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.io.replay import ReplayPacer, ReplaySchedule
from biosig_ros.io.summary import summary_lines
from biosig_ros.signals import MarkerFrame, SignalChunk

from ros_harness import REPO

ABD = REPO / "data" / "abd.bio"


def raw_abd():
    with open(ABD, "rb") as file:
        return pickle.load(file)


def test_bio_recording_is_converted_to_si_and_samples_major():
    raw = raw_abd()
    recording = load_recording(RecordingSettings(file=str(ABD)))
    assert recording.signal.data.shape == (14000, 10)
    np.testing.assert_array_equal(recording.signal.data, raw["emg"].T)
    assert recording.signal.unit == "V" and recording.signal.sample_rate == 2000.0
    assert recording.markers.positions.shape == (700, 16, 3)
    np.testing.assert_allclose(recording.markers.positions,
                               np.transpose(raw["markers"], (2, 1, 0)) / 1000.0)
    assert recording.duration == pytest.approx(7.0)


def test_bio_zero_markers_are_occluded(tmp_path):
    markers = np.ones((3, 2, 4))
    markers[:, 1, 2] = 0.0
    path = tmp_path / "m.bio"
    path.write_bytes(pickle.dumps({"markers": markers}))
    recording = load_recording(RecordingSettings(file=str(path), signal_key="", marker_unit="m"))
    assert np.isnan(recording.markers.positions[2, 1]).all()
    assert not np.isnan(recording.markers.positions[1]).any()


def write_c3d(path, points_mm, analogs, analog_units):
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [100]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = ["A", "B"]
    c3d["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    points = np.ones((4, 2, points_mm.shape[2]))
    points[:3] = points_mm
    c3d["data"]["points"] = points
    c3d["parameters"]["ANALOG"]["RATE"]["value"] = [1000]
    c3d["parameters"]["ANALOG"]["LABELS"]["value"] = ["x", "y", "z"]
    c3d["parameters"]["ANALOG"]["UNITS"]["value"] = analog_units
    c3d["data"]["analogs"] = analogs[np.newaxis]
    c3d.write(str(path))


def test_c3d_recording_selects_channels_by_name_and_converts_units(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform(-1000, 1000, (3, 2, 10))
    points[:, 1, 5] = np.nan
    analogs = rng.normal(size=(3, 100))
    path = tmp_path / "trial.c3d"
    write_c3d(path, points, analogs, ["V", "mV", "V"])
    recording = load_recording(RecordingSettings(file=str(path), channel_names=["y", "x"],
                                                 marker_names=["B", "A"], subject="s1"))
    assert recording.signal.channel_names == ["y", "x"]
    assert recording.signal.sample_rate == 1000.0
    np.testing.assert_allclose(recording.signal.data[:, 0], analogs[1] * 1e-3, rtol=1e-6)
    np.testing.assert_allclose(recording.signal.data[:, 1], analogs[0], rtol=1e-6)
    assert recording.markers.marker_names == ["B", "A"] and recording.markers.frame_rate == 100.0
    np.testing.assert_allclose(recording.markers.positions[:, 1], points[:, 0].T / 1000, rtol=1e-6)
    assert np.isnan(recording.markers.positions[5, 0]).all()


@pytest.mark.parametrize("settings, message", [
    (dict(file="no/such/file.bio"), "not found"),
    (dict(file=str(REPO / "package.xml")), "unsupported recording format"),
    (dict(file=str(ABD), signal_key="force"), "no key 'force'"),
    (dict(file=str(ABD), channel_names=["a", "b"]), "has 10 channels but channel_names lists 2"),
    (dict(file=str(ABD), marker_unit="inch"), "marker_unit"),
    (dict(file=str(ABD), sample_rate=0.0), "sample_rate"),
])
def test_bad_recording_settings_name_the_problem(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_recording(RecordingSettings(**settings))


def test_c3d_unknown_channel_is_reported(tmp_path):
    path = tmp_path / "trial.c3d"
    write_c3d(path, np.ones((3, 2, 10)), np.ones((3, 100)), ["V", "V", "V"])
    with pytest.raises(ConfigError, match="no analog channel named EMG9"):
        load_recording(RecordingSettings(file=str(path), channel_names=["EMG9"]))


def test_garbage_bio_file_is_rejected(tmp_path):
    path = tmp_path / "garbage.bio"
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(ConfigError, match="not a biosiglive .bio file"):
        load_recording(RecordingSettings(file=str(path)))


def test_schedule_covers_the_recording_once_with_contiguous_indices():
    recording = load_recording(RecordingSettings(file=str(ABD)))
    events = list(ReplaySchedule(recording, chunk_size=20))
    chunks = [e.item for e in events if isinstance(e.item, SignalChunk)]
    frames = [e.item for e in events if isinstance(e.item, MarkerFrame)]
    assert [c.first_sample_index for c in chunks] == list(range(0, 14000, 20))
    np.testing.assert_array_equal(np.concatenate([c.data for c in chunks]), recording.signal.data)
    assert [f.frame_number for f in frames] == list(range(700))
    assert [e.due for e in events] == sorted(e.due for e in events)


def test_looped_schedule_keeps_counting_and_restarts_the_data():
    recording = load_recording(RecordingSettings(file=str(ABD), markers_key=""))
    chunks = [e.item for e in itertools.islice(ReplaySchedule(recording, 30, loop=True), 1000)]
    indices = [c.first_sample_index for c in chunks]
    assert all(b.first_sample_index == a.next_sample_index for a, b in zip(chunks, chunks[1:]))
    # 14000 is not a multiple of 30: the chunk at the seam is short, then data restarts.
    seam = next(i for i, c in enumerate(chunks) if c.next_sample_index == 14000)
    assert chunks[seam].sample_count == 14000 % 30
    np.testing.assert_array_equal(chunks[seam + 1].data, recording.signal.data[:30])
    assert indices[seam + 1] == 14000


def test_pacer_releases_events_on_an_absolute_schedule():
    recording = load_recording(RecordingSettings(file=str(ABD)))
    released = []
    pacer = ReplayPacer(ReplaySchedule(recording, 20), released.append, speed=20.0,
                        wall_clock=lambda: 1000.0)
    pacer.start()
    assert pacer.finished.wait(10)
    assert len(released) == 700 + 700
    chunk = next(e.item for e in released if isinstance(e.item, SignalChunk)
                 and e.item.first_sample_index == 2000)
    # Stamp = wall time at start + recording time of the first sample / speed.
    assert chunk.stamp == pytest.approx(1000.0 + 1.0 / 20.0)


# --- files as real systems write them -------------------------------------------------------

WU_MODEL = REPO / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod"


def test_nexus_c3d_picks_emg_by_label_and_strips_the_subject_prefix(tmp_path):
    from nexus_c3d import ABSENT, EMG_LABELS, EXTRA_MARKERS, GAPS, SUBJECT, write_nexus_c3d

    path = tmp_path / "trial.c3d"
    written = write_nexus_c3d(path)
    recording = load_recording(RecordingSettings(file=str(path), model_path=str(WU_MODEL)))
    assert recording.signal.channel_names == EMG_LABELS
    np.testing.assert_allclose(recording.signal.data.T, written["emg"], rtol=1e-6, atol=1e-12)
    assert recording.signal.sample_rate == 2000.0 and recording.signal.unit == "V"
    markers = recording.markers
    assert markers.subject == SUBJECT
    assert markers.marker_names == written["marker_names"]          # no prefix, no "*12"
    np.testing.assert_allclose(markers.positions * 1000, written["positions_mm"][:, :-1],
                               rtol=1e-6)
    first, last = GAPS["DELT"]
    assert np.isnan(markers.positions[first:last + 1, markers.marker_names.index("DELT")]).all()

    lines = "\n".join(summary_lines(recording, written["model_names"], "wu.bioMod"))
    assert ("EMG channels: 16 of 23 analog channels match emg_channel_pattern 'EMG'; left out: "
            "Fx1, Fy1, Fz1, Mx1, My1, Mz1, Voltage.Sync") in lines
    assert f"subject '{SUBJECT}' taken from the labels' prefix" in lines
    assert "1 trajectories of no subject or another one left out: *12" in lines
    assert "15 of 16 model markers in the recording" in lines
    assert f"missing (treated as occluded): {ABSENT}" in lines
    assert f"not in the model (ignored): {', '.join(EXTRA_MARKERS)}" in lines


def test_emg_channels_by_another_pattern_or_none(tmp_path):
    from nexus_c3d import write_nexus_c3d

    path = tmp_path / "trial.c3d"
    write_nexus_c3d(path, seconds=0.2)
    deltoid = load_recording(RecordingSettings(file=str(path), emg_channel_pattern=r"^delt"))
    assert deltoid.signal.channel_names == ["Delt_ant.EMG1", "Delt_med.EMG2", "Delt_post.EMG3"]
    none = load_recording(RecordingSettings(file=str(path), emg_channel_pattern="gonio",
                                            frame_rate=50.0))
    assert none.signal is None and "no analog label matches" in " ".join(none.notes)
    assert "frame_rate: for .bio files only, ignored" in " ".join(none.notes)
    assert none.markers.frame_rate == 100.0
    with pytest.raises(ConfigError, match="emg_channel_pattern"):
        load_recording(RecordingSettings(file=str(path), emg_channel_pattern="EMG("))


@pytest.mark.parametrize("labels, subject, expected", [
    (["A", "B"], "", ([0, 1], ["A", "B"], "", [])),
    (["S:A", "S:B", "*3"], "", ([0, 1], ["A", "B"], "S", ["*3"])),
    (["S:A", "T:A", "S:B"], "T", ([1], ["A"], "T", ["S:A", "S:B"])),
])
def test_split_subject(labels, subject, expected):
    split = split_subject(labels, subject)
    assert (split.indices, split.names, split.subject, split.left_out) == expected


def test_several_subjects_without_a_choice_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"several subjects \(S, T\): set parameter 'subject'"):
        split_subject(["S:A", "T:A"])


def test_bio_markers_take_the_model_names_when_the_counts_agree():
    recording = load_recording(RecordingSettings(file=str(ABD), model_path=str(WU_MODEL)))
    assert recording.markers.marker_names == biomod_marker_names(WU_MODEL)
    assert recording.markers.subject == "abd"
    assert "the model's 16 names are used" in " ".join(recording.notes)
    assert recording.signal.channel_names == [f"EMG{i}" for i in range(1, 11)]


def test_biomod_marker_names_skip_commented_markers(tmp_path):
    model = tmp_path / "m.bioMod"
    model.write_text("segment a\nendsegment\nmarker A\n parent a\nendmarker\n"
                     "/*marker B\nendmarker*/\n// marker C\nMarker D\nendmarker\n")
    assert biomod_marker_names(model) == ["A", "D"]
