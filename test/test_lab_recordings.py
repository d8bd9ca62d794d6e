"""A real lab's capture (#22): several labelled objects, flat analog channels, marker names in
another case or with a suffix. The replay picks the subject matching the model (and says why),
skips flat channels (and says which), suggests the name map; bio_check says the same, in its
own option names, and claims no fit for a check that did not run. The one command
`tools/run demo --recording FILE --model MODEL` runs on such a file, and bio_check in another
process prints the same choices."""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray

from biosig_ros.errors import ConfigError
from biosig_ros.io.labels import split_subject, suggest_names
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.tools import bio_check

from nexus_c3d import EMG_LABELS, SUBJECT, WU_MODEL, write_nexus_c3d
from ros_harness import REPO, RosProbe

MODEL_NAMES = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom", "SCAP_AA",
               "EPICl", "EPICm", "DELT", "ARMl", "STYLu", "LARM_elb", "STYLr"]
FLAT = ("Sensor 9.EMG9", "Sensor 10.EMG10")
RENAME = {"Acrom": "ACRO_tip", "STER": "ster"}


def lab_capture(path, **options):
    values = dict(seconds=2.0, second_subject="boite", flat=FLAT, im_emg=4, rename=RENAME)
    values.update(options)
    return write_nexus_c3d(path, **values)


# --- name suggestions ---------------------------------------------------------------------
def test_suggestions_find_case_separator_and_suffix_variants():
    unknown = ["ACRO_tip", "ster", "clav-sc", "STYL_r", "RFIN", "LSHO"]
    suggested = suggest_names(MODEL_NAMES, unknown)
    assert suggested.mapping == {"ster": "STER", "clav-sc": "CLAV_SC", "STYL_r": "STYLr",
                                 "ACRO_tip": "Acrom"}
    assert suggested.name_map_entries()[0] == "ster=STER"


@pytest.mark.parametrize("missing, unknown", [
    (["C7"], ["M7"]), (["T10"], ["T8"]), (["C7"], ["C6"]), (["STER"], ["LSHO", "RFIN"]),
    (["SCAP_IA"], ["SCAP_AA"]), (["EPICl"], ["EPICm"]),
])
def test_no_suggestion_between_names_that_differ_in_what_they_mean(missing, unknown):
    suggested = suggest_names(missing, unknown)
    assert suggested.mapping == {} and suggested.ambiguous == {}


def test_a_name_fitting_two_markers_is_ambiguous_not_guessed():
    suggested = suggest_names(["SCAP_IA", "SCAP_AA"], ["SCAP"])
    assert suggested.mapping == {}
    assert suggested.ambiguous == {"SCAP_IA": ["SCAP"], "SCAP_AA": ["SCAP"]}


# --- subject among several ----------------------------------------------------------------
LABELS = [f"Daphnee:{n}" for n in MODEL_NAMES[:14]] + ["Daphnee:EXTRA", "Daphnee:acrom"] + \
         [f"boite:B{i}" for i in range(4)] + ["*3"]


def test_the_subject_whose_markers_match_the_model_is_picked_and_why_is_said():
    split = split_subject(LABELS, "", MODEL_NAMES)
    assert split.subject == "Daphnee" and len(split.names) == 16
    assert "15 of the model's 16" in split.why and "boite 0" in split.why
    assert split.left_out == ["boite:B0", "boite:B1", "boite:B2", "boite:B3", "*3"]
    assert split_subject(LABELS, "boite", MODEL_NAMES).subject == "boite"   # asked for


@pytest.mark.parametrize("labels, model, words", [
    (LABELS, None, "several subjects (Daphnee, boite)"),
    (["a:X", "b:Y"], MODEL_NAMES, "none matching the model best"),
    (["a:STER", "b:C7"], MODEL_NAMES, "a 1, b 1"),
])
def test_no_subject_to_pick_is_a_config_error_naming_them(labels, model, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        split_subject(labels, "", model)


# --- flat channels --------------------------------------------------------------------------
def test_flat_channels_are_skipped_and_named_unless_kept(tmp_path):
    written = lab_capture(tmp_path / "trial.c3d")
    settings = RecordingSettings(file=str(tmp_path / "trial.c3d"), model_path=str(WU_MODEL))
    recording = load_recording(settings)
    assert recording.signal.channel_names == written["live_emg"]
    np.testing.assert_allclose(recording.signal.data[:, 0], written["emg"][0])
    note = next(n for n in recording.notes if "flat" in n)
    assert note.startswith(f"EMG channels: 6 flat (constant over the whole file), skipped: "
                           f"{', '.join(written['flat'])}")
    kept = load_recording(RecordingSettings(file=settings.file, keep_flat_channels=True,
                                            model_path=str(WU_MODEL)))
    assert len(kept.signal.channel_names) == len(EMG_LABELS) + 4
    listed = load_recording(RecordingSettings(file=settings.file, channel_names=list(FLAT),
                                              model_path=str(WU_MODEL)))
    assert listed.signal.channel_names == list(FLAT)      # asked for by name: played


# --- bio_check ------------------------------------------------------------------------------
def test_bio_check_names_its_own_option_for_the_subject(tmp_path, capsys):
    path = tmp_path / "trial.c3d"
    lab_capture(path)
    assert bio_check.main([str(path), str(WU_MODEL), "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "option --subject picks another" in out and "parameter 'subject'" not in out
    assert "option --keep-flat-channels keeps them" in out
    # A model none of the subjects matches: the error names --subject.
    other = tmp_path / "other.bioMod"
    other.write_text("marker NOPE\nendmarker\n", encoding="utf-8")
    assert bio_check.main([str(path), str(other)]) == 2
    error = capsys.readouterr().err
    assert "set option --subject" in error and "parameter" not in error


def test_without_biorbd_bio_check_claims_no_fit(tmp_path, monkeypatch):
    from biosig_ros.processing import ik_model

    path = tmp_path / "clean.c3d"
    written = write_nexus_c3d(path, seconds=2.0)   # DELT's gap: 8 % of the frames
    monkeypatch.setattr(ik_model, "biorbd", None)
    # A model text (read without biorbd) naming exactly the subject's model markers: no advice.
    model = tmp_path / "names.bioMod"
    present = [n for n in MODEL_NAMES if n in written["marker_names"]]
    model.write_text("".join(f"marker {n}\nendmarker\n" for n in present), encoding="utf-8")
    lines = []
    advice = bio_check.check(RecordingSettings(file=str(path), model_path=str(model)), 0.2,
                             lines.append)
    assert advice == [] and "IK residuals: skipped, biorbd is not installed" in "\n".join(lines)
    assert "fits" not in lines[-1], lines[-1]
    assert "were not checked (biorbd is not installed" in lines[-1]


# --- the one command, and bio_check in another process ------------------------------------
def ik_frames(diagnostics) -> int:
    for _, array in reversed(list(diagnostics)):
        for status in array.status:
            if status.name == "ik":
                values = {kv.key: kv.value for kv in status.values}
                return int(values.get("frames_received", 0))
    return 0


def said(output: str, start: str) -> str:
    """The line of output (a node's log or bio_check's) holding `start`, from there on."""
    for line in output.splitlines():
        if start in line:
            return line[line.index(start):].strip()
    raise AssertionError(f"no line with {start!r} in:\n{output[-4000:]}")


@pytest.mark.integration
def test_the_one_command_runs_and_bio_check_gives_the_same_advice(tmp_path):
    lab_capture(tmp_path / "trial.c3d", seconds=3.0)
    environment = dict(os.environ)
    with RosProbe() as probe:
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        demo = subprocess.Popen(
            [str(REPO / "tools" / "run"), "demo", "--recording", "trial.c3d", "--model",
             str(WU_MODEL), "--set", "bridge.port=0", "--set", "bridge.record_on_start=false"],
            cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            encoding="utf-8", errors="replace", start_new_session=True)
        try:
            solved = probe.wait_until(lambda: ik_frames(diagnostics) > 10, timeout=300)
        finally:
            os.killpg(demo.pid, signal.SIGINT)
            output, _ = demo.communicate(timeout=60)
    assert solved, output[-6000:]
    check = subprocess.run(
        [sys.executable, "-m", "biosig_ros.tools.bio_check", str(tmp_path / "trial.c3d"),
         str(WU_MODEL), "--seconds", "0.5"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    for start in ("subject 'Subj01' picked among 2 subjects", "EMG channels: 6 flat",
                  "suggested name map: ster -> STER, ACRO_tip -> Acrom",
                  f"model {WU_MODEL}: 13 of 16", "EMG: 14 channels"):
        replay, checked = said(output, start), said(check.stdout, start)
        assert replay.replace("parameter 'subject'", "option --subject").replace(
            "parameter 'keep_flat_channels'", "option --keep-flat-channels") == checked
    assert f"subject '{SUBJECT}' picked" in output
    assert "[ster=STER, ACRO_tip=Acrom]" in said(output, "suggested name map")
