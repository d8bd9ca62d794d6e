"""Replay of MCAP files (ROS 2 CDR, as rosbag2 and the mcap_recorder write them).

The files are written here with mcap-ros2-support's writer (not the package's reader's code
path) from data/abd.bio, with one chunk and one frame lost before the recording, an envelope
topic beside the raw EMG, and cut short for the crash case.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap_ros2.writer import Writer

from biosig_ros.errors import ConfigError
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.io.replay import ReplaySchedule
from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.ros.conversions import msg_to_chunk, msg_to_frame
from biosig_ros.signals import SignalChunk as Chunk

from ros_harness import REPO, NodeProcess, RosProbe

ABD = REPO / "data" / "abd.bio"
LOST_CHUNK = 30      # chunk (of 20 samples) not in the file
LOST_FRAME = 42      # marker frame not in the file
SEPARATOR = "\n" + "=" * 80 + "\n"


def definition(package: str, name: str, uses: list[str]) -> str:
    """ros2msg schema text: the type's .msg, then each type it uses."""
    roots = ([REPO / "msg"] if package == "biosig_ros" else []) + [
        Path(sys.prefix) / "share" / package / "msg"]
    text = next((root / f"{name}.msg").read_text(encoding="utf-8") for root in roots
                if (root / f"{name}.msg").is_file())
    for used in uses:
        pkg, _, typ = used.partition("/")
        text += SEPARATOR + f"MSG: {used}\n" + (Path(sys.prefix) / "share" / pkg / "msg" /
                                              f"{typ}.msg").read_text(encoding="utf-8")
    return text


def stamp(seconds: float) -> dict:
    return {"sec": int(seconds), "nanosec": int(round((seconds % 1) * 1e9))}


def write_abd_mcap(path: Path, seconds: float = 2.0, cut_at: float | None = None) -> dict:
    recording = load_recording(RecordingSettings(file=str(ABD)))
    header = ["std_msgs/Header", "builtin_interfaces/Time"]
    with open(path, "wb") as file:
        writer = Writer(file, chunk_size=4096)
        chunk_schema = writer.register_msgdef("biosig_ros/msg/SignalChunk",
                                              definition("biosig_ros", "SignalChunk", header))
        marker_schema = writer.register_msgdef(
            "biosig_ros/msg/MarkerSet",
            definition("biosig_ros", "MarkerSet", header + ["geometry_msgs/Point"]))
        for event in ReplaySchedule(recording, 20):
            item, t = event.item, 1000.0 + event.offset
            if event.offset >= seconds:
                break
            head = {"stamp": stamp(t), "frame_id": "world"}
            if isinstance(item, Chunk):
                if item.first_sample_index // 20 == LOST_CHUNK:
                    continue
                message = {"header": head, "channel_names": item.channel_names, "unit": "V",
                           "sample_rate": 2000.0, "first_sample_index": item.first_sample_index,
                           "sample_count": item.sample_count,
                           "data": item.data.ravel().tolist()}
                for topic in ("/emg/raw", "/emg/envelope"):
                    writer.write_message(topic, chunk_schema, message, int(t * 1e9))
            elif item.frame_number != LOST_FRAME:
                writer.write_message("/markers", marker_schema, {
                    "header": head, "subject": "abd", "frame_number": item.frame_number,
                    "frame_rate": 100.0, "marker_names": item.marker_names,
                    "positions": [{"x": x, "y": y, "z": z} for x, y, z in item.positions],
                    "occluded": item.occluded.tolist()}, int(t * 1e9))
        writer.finish()
    if cut_at is not None:
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * cut_at)])
    return {"emg": recording.signal.data[:int(seconds * 2000)],
            "markers": recording.markers.positions[:int(seconds * 100)]}


def test_mcap_is_read_by_indices_with_the_losses_shown(tmp_path):
    path = tmp_path / "demo.mcap"
    expected = write_abd_mcap(path)
    recording = load_recording(RecordingSettings(file=str(path)))
    signal, markers = recording.signal, recording.markers
    assert signal.channel_names == [f"EMG{i}" for i in range(1, 11)]
    assert signal.sample_rate == 2000.0 and signal.unit == "V"
    lost = slice(LOST_CHUNK * 20, LOST_CHUNK * 20 + 20)
    assert (signal.data[lost] == 0).all()
    keep = np.ones(len(expected["emg"]), bool)
    keep[lost] = False
    np.testing.assert_array_equal(signal.data[keep], expected["emg"][keep])
    assert markers.subject == "abd" and markers.frame_rate == 100.0 and markers.unit == "m"
    assert np.isnan(markers.positions[LOST_FRAME]).all()
    rows = np.arange(len(expected["markers"])) != LOST_FRAME
    np.testing.assert_array_equal(markers.positions[rows], expected["markers"][rows])
    notes = " ".join(recording.notes)
    assert "/emg/raw (199 messages), /markers (199 messages)" in notes      # not the envelope
    assert "20 samples missing" in notes and "1 frames missing" in notes


def test_another_topic_by_name_and_clear_errors(tmp_path):
    path = tmp_path / "demo.mcap"
    write_abd_mcap(path, seconds=0.5)
    envelope = load_recording(RecordingSettings(file=str(path), signal_key="/emg/envelope",
                                                markers_key=""))
    assert envelope.markers is None and "/emg/envelope" in envelope.notes[0]
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not an mcap file at all")
    with pytest.raises(ConfigError, match="not a readable .mcap file"):
        load_recording(RecordingSettings(file=str(garbage)))


def test_a_file_cut_short_yields_what_precedes_the_cut(tmp_path):
    path = tmp_path / "cut.mcap"
    write_abd_mcap(path, cut_at=0.6)
    recording = load_recording(RecordingSettings(file=str(path)))
    assert "the file ends early" in " ".join(recording.notes)
    assert 0 < len(recording.signal.data) < 4000


@pytest.mark.integration
def test_replay_node_plays_an_mcap_like_the_live_topics(tmp_path):
    path = tmp_path / "demo.mcap"
    expected = write_abd_mcap(path, seconds=1.0)
    with RosProbe() as probe:
        chunks = probe.subscribe(SignalChunk, "/emg/raw")
        frames = probe.subscribe(MarkerSet, "/markers")
        params = {"file": str(path), "wait_for_subscribers": 1, "speed": 2.0}
        with NodeProcess("biosig_ros.nodes.replay_node", "replay", params) as node:
            assert probe.wait_until(lambda: len(chunks) >= 100 and len(frames) >= 100,
                                    timeout=60), node.output()
    received = [msg_to_chunk(m) for _, m in chunks]
    assert [c.first_sample_index for c in received] == list(range(0, 2000, 20))
    data = np.concatenate([c.data for c in received])
    np.testing.assert_array_equal(data[:600], expected["emg"][:600])
    markers = [msg_to_frame(m) for _, m in frames]
    assert [m.frame_number for m in markers] == list(range(100))
    np.testing.assert_array_equal(markers[5].positions, expected["markers"][5])
    assert markers[0].subject == "abd"
