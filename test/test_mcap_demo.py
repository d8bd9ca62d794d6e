"""MCAP end to end: the demo graph with record_mcap:=true records its topics; the file, read
back with the mcap reader and mcap_ros2's decoder (not the writer's code path), holds what the
graph published with its types and stamps; a copy cut at a random point still yields every
message before the cut; replay_node playing the file reproduces the recorded topics."""
import random

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import pytest
from sensor_msgs.msg import JointState

from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.ros.conversions import msg_to_chunk, msg_to_frame
from biosig_ros.ros.qos import output_qos

from graph_harness import GraphProcess
from ros_harness import NodeProcess, RosProbe

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

TYPES = {"/emg/raw": "biosig_ros/msg/SignalChunk", "/emg/envelope": "biosig_ros/msg/SignalChunk",
         "/markers": "biosig_ros/msg/MarkerSet", "/ik/joint_states": "sensor_msgs/msg/JointState",
         "/ik/marker_residuals": "biosig_ros/msg/MarkerResiduals",
         "/ik/quality": "biosig_ros/msg/IkQuality", "/tf": "tf2_msgs/msg/TFMessage"}


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _read(path):
    """{topic: [(schema name, decoded message)]} in file order."""
    messages = {}
    with open(path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, _, decoded in reader.iter_decoded_messages(log_time_order=False):
            assert channel.message_encoding == "cdr" and schema.encoding == "ros2msg"
            messages.setdefault(channel.topic, []).append((schema.name, decoded))
    return messages


def _record_demo(tmp_path):
    """Run the demo with the recorder for a few seconds; the messages a reliable subscriber
    received meanwhile, and the recorded file."""
    with RosProbe() as probe:
        raw = probe.subscribe(SignalChunk, "/emg/raw", output_qos(1000))
        joints = probe.subscribe(JointState, "/ik/joint_states", output_qos(1000))
        graph = GraphProcess("demo", "--record-mcap", "true", "--record-directory", str(tmp_path),
                             "--set", "bridge.port=0", "--set", "bridge.record_on_start=false",
                             "--set", "mcap_recorder.record_path=demo",
                             "--set", "mcap_recorder.flush_period=0.2")
        try:
            assert graph.wait_for(r"\[mcap_recorder\] .*recording /ik/quality"), graph.output()
            assert probe.wait_until(lambda: len(raw) >= 400 and len(joints) >= 300,
                                    timeout=120), (len(raw), len(joints), graph.output()[-3000:])
        finally:
            status = graph.stop()
    assert status == 0, graph.output()[-3000:]
    assert "recording closed" in graph.output(), graph.output()[-3000:]
    (path,) = tmp_path.glob("demo*.mcap")  # one part (rotation at 1 GB)
    return [m for _, m in raw], [m for _, m in joints], path


def test_the_demo_recorded_to_mcap_reads_back_cuts_cleanly_and_replays(tmp_path):
    raw, joints, path = _record_demo(tmp_path)
    recorded = _read(path)
    assert set(recorded) == set(TYPES), set(recorded)
    for topic, messages in recorded.items():
        assert {name for name, _ in messages} == {TYPES[topic]}, topic

    # Every EMG chunk from the recorder's first to its last, in order, none missing (the
    # recorder subscribes reliably to reliable publishers), each as a subscriber saw it.
    chunks = [m for _, m in recorded["/emg/raw"]]
    starts = [c.first_sample_index for c in chunks]
    assert starts == list(range(starts[0], starts[-1] + 1, chunks[0].sample_count))
    by_index = {c.first_sample_index: c for c in chunks}
    compared = 0
    for live in raw:
        if live.first_sample_index in by_index:
            saved = by_index[live.first_sample_index]
            assert _seconds(saved.header.stamp) == _seconds(live.header.stamp)
            np.testing.assert_array_equal(np.asarray(saved.data), np.asarray(live.data))
            compared += 1
    assert compared >= 0.8 * len(raw) and compared >= 200, (compared, len(raw))
    frames = [m.frame_number for _, m in recorded["/markers"]]
    assert frames == list(range(frames[0], frames[-1] + 1))
    recorded_joints = {_seconds(m.header.stamp): list(m.position)
                       for _, m in recorded["/ik/joint_states"]}
    # Every joint state seen live within the recording's span is in it (the recorder subscribes
    # reliably; before and after the span, it was not recording yet, or no more, as the
    # probe, which starts first and stops last, still took them: 95 of 391 once under load).
    first, last = min(recorded_joints), max(recorded_joints)
    inside = [j for j in joints if first <= _seconds(j.header.stamp) <= last]
    matched = [j for j in inside if _seconds(j.header.stamp) in recorded_joints]
    assert len(inside) >= 200 and len(matched) == len(inside), (
        len(matched), len(inside), len(joints))
    assert all(recorded_joints[_seconds(j.header.stamp)] == list(j.position) for j in matched)
    assert all(t.transforms for _, t in recorded["/tf"][:10])

    # Cut at a random point: the replay's reader gets a prefix of the same EMG.
    full = load_recording(RecordingSettings(file=str(path)))
    data = path.read_bytes()
    cut_at = random.Random().randrange(len(data) // 4, len(data) * 3 // 4)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:cut_at])
    partial = load_recording(RecordingSettings(file=str(cut)))
    kept = len(partial.signal.data)
    assert 0 < kept < len(full.signal.data), (cut_at, len(data))
    np.testing.assert_array_equal(partial.signal.data, full.signal.data[:kept])
    assert "the file ends early" in " ".join(partial.notes)

    # Replay of the file: the same chunks (indices, values) and marker frames, on the topics.
    with RosProbe() as probe:
        replayed = probe.subscribe(SignalChunk, "/emg/raw")
        replayed_frames = probe.subscribe(MarkerSet, "/markers")
        params = {"file": str(path), "wait_for_subscribers": 1, "speed": 4.0, "loop": False}
        with NodeProcess("biosig_ros.nodes.replay_node", "replay", params) as node:
            assert probe.wait_until(lambda: len(replayed) >= 300 and len(replayed_frames) >= 300,
                                    timeout=60), node.output()[-3000:]
    played = [msg_to_chunk(m) for _, m in replayed]
    recorded_chunks = {c.first_sample_index: np.asarray(c.data).reshape(c.sample_count, -1)
                       for c in chunks}
    first = starts[0]
    for chunk in played:
        # The replay counts from 0: chunk i of the replay is the file's chunk at first + i.
        np.testing.assert_array_equal(
            chunk.data, recorded_chunks[first + chunk.first_sample_index])
    markers = [msg_to_frame(m) for _, m in replayed_frames]
    recorded_frames = {m.frame_number: m for _, m in recorded["/markers"]}
    for frame in markers[:50]:
        saved = msg_to_frame(recorded_frames[frames[0] + frame.frame_number])
        visible = ~saved.occluded if saved.occluded is not None else slice(None)
        assert frame.marker_names == saved.marker_names
        np.testing.assert_array_equal(frame.positions[visible], saved.positions[visible])
