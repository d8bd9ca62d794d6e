"""A new user's first hour: the one command on their own recording and model.

`python -m biosig_ros.graph demo --recording FILE --model FILE` (what `tools/run demo
--recording FILE --model FILE` runs) on a .c3d in Vicon Nexus layout, written here: no name
map, no channel list; what it picked is printed, and IK and EMG processing get the file from
its first frame and sample (the replay waits for them) to its last, in order. (Losses in the
middle on a loaded machine are counted, not failed: the node tests check the counting.)
"""
import os
import signal
import subprocess
import sys

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from biosig_ros.msg import MarkerResiduals, SignalChunk
from biosig_ros.ros.qos import output_qos

from nexus_c3d import ABSENT, EMG_LABELS, SUBJECT, WU_MODEL, write_nexus_c3d
from ros_harness import REPO, RosProbe


def envelope_end(envelopes) -> int:
    """One past the newest envelope sample received."""
    newest = list(envelopes)[-1:]
    return newest[0][1].first_sample_index + newest[0][1].sample_count if newest else 0


def ik_values(diagnostics) -> dict:
    for _, array in reversed(list(diagnostics)):
        for status in array.status:
            if status.name == "ik":
                return {kv.key: kv.value for kv in status.values}
    return {}


@pytest.mark.integration
def test_one_command_on_a_nexus_c3d_starts_at_the_first_frame_and_sample(tmp_path):
    written = write_nexus_c3d(tmp_path / "trial.c3d", seconds=3.0)
    frames, samples = written["frames"], written["samples"]
    environment = dict(os.environ, BIOSIG_ROS_CALLER_DIR=str(tmp_path))  # relative paths: here
    with RosProbe() as probe:
        # reliable (the graph's outputs are): a probe slowed by a loaded machine loses nothing
        envelopes = probe.subscribe(SignalChunk, "/emg/envelope", output_qos(1000))
        residuals = probe.subscribe(MarkerResiduals, "/ik/marker_residuals", output_qos(1000))
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        graph = subprocess.Popen(
            [sys.executable, "-u", "-m", "biosig_ros.graph", "demo", "--recording", "trial.c3d",
             "--model", str(WU_MODEL), "--set", "replay.loop=false", "--set", "bridge.port=0",
             # Half speed: a loaded test machine starves the consumers less (loss in the
             # middle is not what this test is about; the start is).
             "--set", "replay.speed=0.5",
             # The replay sees IK subscribed before IK's side has matched the replay (DDS
             # discovery is per side); 0.5 s covers that on a lab PC, not beside 17 processes
             # starting at once in the run's other workers (frames 0-17 were lost once).
             "--set", "replay.settle_time=3.0",
             "--set", "bridge.record_on_start=false"],
            cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            encoding="utf-8", errors="replace", start_new_session=True)
        try:
            done = probe.wait_until(
                lambda: ik_values(diagnostics).get("last_frame_received") == str(frames - 1)
                and envelope_end(envelopes) >= samples, timeout=180)
        finally:
            graph.send_signal(signal.SIGINT)
            output, _ = graph.communicate(timeout=60)
    values = ik_values(diagnostics)
    assert done, (f"IK: {values}\nenvelope samples: up to {envelope_end(envelopes)} of {samples}\n"
                  + "\n".join(output.splitlines()[-60:]))
    # What it chose, printed at start.
    assert f"EMG: 16 channels at 2000 Hz in V: {', '.join(EMG_LABELS)}" in output
    assert "left out: Fx1, Fy1, Fz1, Mx1, My1, Mz1, Voltage.Sync" in output
    assert f"subject '{SUBJECT}' taken from the labels' prefix" in output
    assert f"15 of 16 model markers in the recording; missing (treated as occluded): {ABSENT}" \
        in output
    # IK got the first frame and the last; every frame is received or counted as missing.
    assert values["first_frame_received"] == "0", values
    assert int(values["frames_received"]) + int(values["frames_missing_upstream"]) == frames, \
        values
    assert residuals[0][1].frame_number == 0
    # EMG processing got the first sample, then the others in order, to the last.
    indices = [(m.first_sample_index, m.sample_count) for _, m in envelopes]
    assert indices[0][0] == 0
    assert all(a + n <= b for (a, n), (b, _) in zip(indices, indices[1:])), indices[:5]
    assert list(envelopes[0][1].channel_names) == EMG_LABELS


def test_recording_and_model_become_parameter_overrides(monkeypatch):
    from biosig_ros.graph import user_files
    from biosig_ros.graph_spec import GRAPHS

    monkeypatch.setenv("BIOSIG_ROS_CALLER_DIR", "/home/me/data")
    overrides = {"replay": ["loop:=false"]}
    specs = user_files(GRAPHS["demo"], overrides, "trial.c3d", "../models/s01.bioMod")
    replay = next(spec for spec in specs if spec.name == "replay")
    assert replay.params == ("replay.yaml",)              # not the abd.bio names
    assert overrides["replay"] == ["loop:=false", "file:=/home/me/data/trial.c3d",
                                   "model_path:=/home/me/models/s01.bioMod"]
    assert overrides["ik"] == ["model_path:=/home/me/models/s01.bioMod"]
    assert overrides["live_view"] == ["model_path:=/home/me/models/s01.bioMod"]
    with pytest.raises(SystemExit, match="--recording applies to graphs with a replay node"):
        user_files(GRAPHS["lab"], {}, "trial.c3d", None)
