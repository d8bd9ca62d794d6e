"""bio_check: a recording against a model, with advice (ROS-free, in-process)."""
import re

import pytest

from biosig_ros.tools.bio_check import main

from nexus_c3d import ABSENT, EMG_LABELS, WU_MODEL, write_nexus_c3d
from ros_harness import REPO

ABD = str(REPO / "data" / "abd.bio")


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_abd_with_the_model_order_names_the_two_swapped_markers(capsys):
    status, out, _ = run(capsys, ABD, WU_MODEL)
    assert status == 0
    assert "the model's 16 names are used in the model's order" in out
    advice = out.split("advice:")[1]
    assert "STYLu and LARM_elb look swapped" in advice
    assert advice.count("\n  - ") == 1, advice           # nothing else is blamed
    assert "STYLu" in [line.split()[0] for line in out.splitlines() if "stands out" in line]


def test_abd_with_its_true_names_fits(capsys):
    status, out, _ = run(capsys, ABD, WU_MODEL, "--params", REPO / "config" / "replay_abd.yaml")
    assert status == 0
    assert "advice: none, the recording fits the model" in out


@pytest.mark.slow  # IK over the whole recording, twice (test/tiers.py)
def test_markers_read_in_the_wrong_unit_are_named(capsys):
    # 0.2 s of residuals: IK on markers 1000x too large iterates long, and the advice comes
    # from the markers' scale, not from the residuals
    _, out, _ = run(capsys, ABD, WU_MODEL, "--marker-unit", "m", "--seconds", "0.2")
    advice = out.split("advice:")[1]
    assert "larger than the model: they are probably in millimetres" in advice
    assert "swapped" not in advice


def test_nexus_c3d_report(capsys, tmp_path):
    path = tmp_path / "trial.c3d"
    write_nexus_c3d(path, seconds=1.0)
    status, out, _ = run(capsys, path, WU_MODEL, "--seconds", "1")
    assert status == 0
    for label in EMG_LABELS:
        assert f"  {label} " in out
    assert re.search(r"\n  DELT +16\.0 % occluded", out)                # frames 20-35 of 100
    assert re.search(r"\n  RFIN +0\.0 % occluded +not in the model", out)
    assert re.search(rf"\n  {ABSENT} +missing from the recording", out)
    assert out.split("advice:")[1].strip() == f"- model marker {ABSENT} is not in the recording"


@pytest.mark.parametrize("argv, message", [
    (["data/nothing.bio", WU_MODEL], "recording file not found"),
    ([ABD, "nothing.bioMod"], "model file not readable"),
])
def test_unusable_files_are_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_without_biorbd_all_but_the_residuals(capsys, monkeypatch):
    from biosig_ros.processing import ik_model

    monkeypatch.setattr(ik_model, "biorbd", None)
    status, out, _ = run(capsys, ABD, WU_MODEL)
    assert status == 0
    assert "16 of 16 model markers in the recording" in out
    assert "IK residuals: skipped, biorbd is not installed" in out
    assert "advice: none" in out
