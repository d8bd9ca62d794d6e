"""bio_convert keeps marker names (#22): a bridge recording's own names, or, for a file
without names (abd.bio), the model's or the ones given, so that its .c3d matches the model
when replayed (it matched 0 of 16 with M0..M15)."""
import ezc3d
import numpy as np
import pytest

from biosig_ros.bridge.bio_convert import run as bio_convert
from biosig_ros.io.labels import biomod_marker_names
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.io.summary import match_markers
from ros_harness import REPO

ABD = REPO / "data" / "abd.bio"
MODEL = REPO / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod"


def replayed_match(path):
    recording = load_recording(RecordingSettings(file=str(path), model_path=str(MODEL)))
    return match_markers(recording.markers.marker_names, biomod_marker_names(MODEL))


def test_a_file_without_names_takes_the_models_and_its_c3d_matches_the_model(tmp_path, capsys):
    target = tmp_path / "abd.c3d"
    assert bio_convert([str(ABD), "-o", str(target), "--model", str(MODEL)]) == 0
    assert "named from the model" in capsys.readouterr().out
    labels = ezc3d.c3d(str(target))["parameters"]["POINT"]["LABELS"]["value"]
    assert labels == biomod_marker_names(MODEL)
    match = replayed_match(target)
    assert len(match.matched) == 16 and not match.missing
    # The positions are the file's, in its order: only the names changed.
    plain = tmp_path / "plain.c3d"
    assert bio_convert([str(ABD), "-o", str(plain)]) == 0
    assert "named M0..M15 (give --model or --marker-names" in capsys.readouterr().out
    np.testing.assert_array_equal(ezc3d.c3d(str(plain))["data"]["points"],
                                  ezc3d.c3d(str(target))["data"]["points"])
    assert len(replayed_match(plain).matched) == 0


def test_names_given_on_the_command_line_and_a_count_that_does_not_agree(tmp_path, capsys):
    names = [f"N{i}" for i in range(16)]
    target = tmp_path / "named.c3d"
    assert bio_convert([str(ABD), "-o", str(target), "--marker-names", ",".join(names)]) == 0
    assert ezc3d.c3d(str(target))["parameters"]["POINT"]["LABELS"]["value"] == names
    capsys.readouterr()
    assert bio_convert([str(ABD), "-o", str(target.with_name("x.c3d")),
                        "--marker-names", "a,b"]) == 0
    assert "gives 2 names for 16 markers" in capsys.readouterr().out
    with pytest.raises(SystemExit):   # one source of names at a time
        bio_convert([str(ABD), "--model", str(MODEL), "--marker-names", "a"])
