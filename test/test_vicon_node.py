"""vicon_markers_node in its own process, simulator backend from the shipped config files."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from biosig_ros.io.bio_file import load_bio
from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.paths import resolve_data_path
from biosig_ros.ros.conversions import msg_to_chunk, msg_to_frame
from ros_harness import NodeProcess, RosProbe, shipped_parameters

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ABD = load_bio(resolve_data_path("data/abd.bio"))
NODE = "biosig_ros.nodes.vicon_markers_node"
RECORDING_ORDER = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom",
                   "SCAP_AA", "EPICl", "EPICm", "DELT", "ARMl", "LARM_elb", "STYLu", "STYLr"]


def shipped_params(*files):
    params = {}
    for name in files:
        params.update(shipped_parameters(name))
    return params


def statuses(diagnostics):
    return [s for _, m in list(diagnostics) for s in m.status if s.name == "vicon_markers"]


def test_markers_occlusions_analog_and_recovery_after_a_server_outage():
    params = shipped_params("vicon_markers.yaml", "vicon_sim.yaml")
    params.update(analog_device="EMG", analog_outputs=["EMG1", "EMG10"],
                  sim_occlusions=["ARMl:450:549"], sim_outages=["2.5:1.5"],
                  retry_interval=0.2, frame_timeout=1.0,   # a loaded machine: no false loss
                  buffer_size=1000,     # a starved test machine delays frames, never drops them
                  frame_id="vicon")
    model_order = params["marker_names"]
    assert model_order[13:15] == ["STYLu", "LARM_elb"]          # the model's order
    started = time.time()  # the simulated server starts in the node, after this
    with RosProbe() as probe, NodeProcess(NODE, "vicon_markers", params) as node:
        markers = probe.subscribe(MarkerSet, "/markers")
        analog = probe.subscribe(SignalChunk, "/vicon/analog")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        assert probe.wait_until(lambda: any("device lost" in s.message and
                                            s.level == DiagnosticStatus.ERROR
                                            for s in statuses(diagnostics)), 40), node.output()
        # streaming again with the outage's frames dropped within the window: WARN, then OK
        assert probe.wait_until(lambda: any(
            s.level == DiagnosticStatus.WARN and "(frames)" in s.message
            for s in statuses(diagnostics)), 30), node.output()
        assert probe.wait_until(lambda: statuses(diagnostics)[-1].level == DiagnosticStatus.OK
                                and markers and markers[-1][1].frame_number > 600,
                                30), node.output()
        assert node.alive() and "device lost" in node.output()
        # frame_id "vicon": this node's messages, not those of a graph sharing the domain
        frames = [(t, msg_to_frame(m)) for t, m in list(markers) if m.header.frame_id == "vicon"]
        chunks = [msg_to_chunk(m) for _, m in list(analog) if m.header.frame_id == "vicon"]

    reorder = [RECORDING_ORDER.index(n) for n in model_order]
    arml = model_order.index("ARMl")
    occluded_frames = 0
    for arrival, frame in frames:
        row = (frame.frame_number - 1) % 700
        assert frame.marker_names == model_order and frame.subject == "abd"
        assert frame.frame_rate == 100.0
        expected = ABD["markers"][:, reorder, row].T / 1000.0         # mm -> m
        hidden = 450 <= row <= 549     # after the outage: start-up timing does not matter
        occluded_frames += hidden
        assert frame.occluded.tolist() == [hidden and i == arml for i in range(16)]
        seen = ~frame.occluded
        assert np.array_equal(frame.positions[seen], expected[seen])
        assert np.all(np.isnan(frame.positions[~seen]))
        # capture time, on this machine's clock: after the server started, before arrival
        # (how long before is the machine's load: a figure of benchmarks, not checked here)
        assert started < frame.stamp <= arrival
    assert occluded_frames >= 50
    numbers = [f.frame_number for _, f in frames]
    jumps = [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1]
    assert len(jumps) == 1 and jumps[0][1] - jumps[0][0] > 100     # 1.5 s outage at 100 Hz
    assert all(b > a for a, b in zip(numbers, numbers[1:]))
    stamps = np.array([f.stamp for _, f in frames])
    steps = np.diff(stamps) / np.diff(numbers)
    assert np.allclose(steps, 0.01, atol=5e-3)                       # capture time per frame

    assert chunks, "no /vicon/analog"
    for chunk in chunks:
        frame_number = chunk.first_sample_index // 20
        row = (frame_number - 1) % 700
        assert chunk.first_sample_index % 20 == 0 and chunk.sample_count == 20
        assert chunk.channel_names == ["EMG1", "EMG10"] and chunk.unit == "V"
        assert chunk.sample_rate == 2000.0
        assert np.array_equal(chunk.data, ABD["emg"][[0, 9], row * 20:row * 20 + 20].T)
    marker_stamps = {f.frame_number: f.stamp for _, f in frames}
    assert all(c.stamp == pytest.approx(marker_stamps[c.first_sample_index // 20], abs=1e-9)
               for c in chunks if c.first_sample_index // 20 in marker_stamps)


def test_a_subject_that_is_not_streamed_is_reported_and_retried():
    params = shipped_params("vicon_markers.yaml", "vicon_sim.yaml")
    params.update(subject="alice", retry_interval=0.3, frame_id="vicon")
    started = time.time()  # the simulated server starts in the node, after this
    with RosProbe() as probe, NodeProcess(NODE, "vicon_markers", params) as node:
        markers = probe.subscribe(MarkerSet, "/markers")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        assert probe.wait_until(lambda: any(
            "subject 'alice' is not streamed (subjects: abd)" in s.message
            and s.level == DiagnosticStatus.ERROR for s in statuses(diagnostics)), 30), \
            node.output()
        assert node.alive() and not [m for _, m in list(markers) if m.header.frame_id == "vicon"]


@pytest.mark.parametrize("params, text", [
    (dict(backend="simulator", stream_mode="Fast"), "'stream_mode'"),
    (dict(backend="simulator", sim_recording="data/missing.bio"), "data/missing.bio"),
])
def test_start_up_errors_exit_with_a_clear_message(params, text):
    node = NodeProcess(NODE, "vicon_markers", params)
    assert node.process.wait(timeout=60) == 2
    output = node.output()
    assert "configuration error" in output and text in output and "Traceback" not in output
