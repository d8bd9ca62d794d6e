"""MCAP recording without ROS: the files read back with the mcap reader and mcap_ros2's decoder
(not the writer's code), rotate and refuse like the .bio recorder, and a file cut anywhere
still gives every message flushed before the cut."""
import io
import random

import numpy as np
import pytest
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from mcap_ros2._dynamic import serialize_dynamic
from mcap_ros2.decoder import DecoderFactory

from biosig_ros.bridge.mcap_schema import message_definition
from biosig_ros.bridge.mcap_writer import McapRecorder, McapSettings
from biosig_ros.bridge.record_files import PathRefused

SIGNAL, JOINTS = "biosig_ros/msg/SignalChunk", "sensor_msgs/msg/JointState"
T0 = 1_700_000_000_000_000_000


def encoder(type_name):
    return serialize_dynamic(type_name, message_definition(type_name))[type_name]


def signal_message(i):
    stamp = T0 + i * 10_000_000
    return {"header": {"stamp": {"sec": stamp // 10 ** 9, "nanosec": stamp % 10 ** 9},
                       "frame_id": ""},
            "channel_names": ["a", "b"], "unit": "V", "sample_rate": 2000.0,
            "first_sample_index": 20 * i, "sample_count": 20,
            "data": list(np.arange(40.0) + i)}, stamp


def joints_message(i):
    stamp = T0 + i * 10_000_000
    return {"header": {"stamp": {"sec": stamp // 10 ** 9, "nanosec": stamp % 10 ** 9},
                       "frame_id": "world"},
            "name": ["q0", "q1"], "position": [0.1 * i, -0.1 * i], "velocity": [],
            "effort": []}, stamp


def record(tmp_path, loops, flush_every, **settings):
    """Record `loops` signal + joint messages; returns the recorder, the file sizes after each
    flush and the messages written by then."""
    values = {"record_directory": str(tmp_path), "flush_period": 60.0, "max_file_bytes": 0,
              **settings}
    rec = McapRecorder(McapSettings(**values))
    rec.start("run")
    encode_signal, encode_joints = encoder(SIGNAL), encoder(JOINTS)
    flushed, sent = [], 0
    for i in range(loops):
        message, stamp = signal_message(i)
        rec.add("/emg/raw", SIGNAL, encode_signal(message), stamp + 5, stamp)
        message, stamp = joints_message(i)
        rec.add("/ik/joint_states", JOINTS, encode_joints(message), stamp + 7, stamp)
        sent += 2
        if (i + 1) % flush_every == 0:
            assert rec.flush()
            flushed.append((rec.path.stat().st_size, sent))
    rec.stop()
    return rec, flushed


def decoded(schema: Schema, message: Message):
    return DecoderFactory().decoder_for("cdr", schema)(message.data)


def test_a_recording_reads_back_with_types_stamps_and_values(tmp_path):
    rec, _ = record(tmp_path, loops=50, flush_every=10, compression="zstd")
    with open(rec.path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert reader.get_header().profile == "ros2"
        assert summary.statistics.message_count == 100
        assert {s.name: s.encoding for s in summary.schemas.values()} == {
            SIGNAL: "ros2msg", JOINTS: "ros2msg"}
        assert {c.topic: c.message_encoding for c in summary.channels.values()} == {
            "/emg/raw": "cdr", "/ik/joint_states": "cdr"}
        signals, joints = [], []
        for schema, channel, message, ros in reader.iter_decoded_messages():
            stamp = ros.header.stamp.sec * 10 ** 9 + ros.header.stamp.nanosec
            assert message.publish_time == stamp
            (signals if channel.topic == "/emg/raw" else joints).append(ros)
    assert [m.first_sample_index for m in signals] == [20 * i for i in range(50)]
    np.testing.assert_array_equal(signals[7].data, np.arange(40.0) + 7)
    assert [m.position for m in joints][3] == pytest.approx([0.3, -0.3])
    assert joints[0].header.frame_id == "world"


def records_before_cut(data: bytes):
    """Every message a stream reader gets from a cut file, decoded."""
    schemas, channels, messages = {}, {}, []
    try:
        for record in StreamReader(io.BytesIO(data), skip_magic=False).records:
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                channel = channels[record.channel_id]
                # repr: decoded classes are made per decoder, so compare their printed values.
                messages.append((channel.topic, repr(decoded(schemas[channel.schema_id], record))))
    except (McapError, EOFError, ValueError, Exception):  # noqa: BLE001 - the cut
        pass
    return messages


@pytest.mark.slow  # a file cut at every offset (test/tiers.py)
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_a_file_cut_anywhere_keeps_every_message_flushed_before_the_cut(tmp_path, compression):
    rec, flushed = record(tmp_path, loops=60, flush_every=6, compression=compression)
    data = rec.path.read_bytes()
    everything = records_before_cut(data)
    assert len(everything) == 120
    rng = random.Random(15)
    for cut in [rng.randrange(8, len(data)) for _ in range(40)] + [size for size, _ in flushed]:
        got = records_before_cut(data[:cut])
        safe = max([sent for size, sent in flushed if size <= cut], default=0)
        assert len(got) >= safe, (cut, len(got), safe)
        assert got == everything[:len(got)]          # nothing out of order, nothing invented


def test_mcap_parts_rotate_refuse_and_never_append(tmp_path):
    rec, _ = record(tmp_path, loops=4000, flush_every=100, compression="none",
                    max_file_bytes=2 ** 20)
    assert len(rec.parts) >= 2 and rec.parts[0].name == "run_part001.mcap"
    total = 0
    for part in rec.parts:
        with open(part, "rb") as stream:
            total += make_reader(stream).get_summary().statistics.message_count
    assert total == 8000
    again = McapRecorder(McapSettings(record_directory=str(tmp_path)))
    with pytest.raises(PathRefused, match="exists"):
        again.start("run")
    with pytest.raises(PathRefused, match="absolute"):
        again.start("/tmp/x.mcap")
    with pytest.raises(PathRefused, match="writes .mcap"):
        again.start("x.bio")


def test_bio_convert_writes_a_bridge_recording_as_mcap(tmp_path):
    from biosig_ros.bridge.bio_convert import run as bio_convert
    from biosig_ros.bridge.bio_recorder import BioRecorder, RecorderSettings

    layout = {"raw_device_data": 1, "marker_set_data": 1, "kinematics_data": 1}
    rec = BioRecorder(layout, RecorderSettings(record_directory=str(tmp_path), max_file_bytes=0,
                                               save_frequency=0.01))
    path = rec.start("session")
    rec.describe("raw_device_data", 0, topic="/emg/raw", names=["e0", "e1"], rate=1000.0, unit="V")
    rec.describe("marker_set_data", 0, topic="/markers", names=["A", "B"], rate=100.0, unit="mm")
    rec.describe("kinematics_data", 0, topic="/ik/joint_states", names=["q0"], rate=None, unit="rad")
    emg = np.arange(2 * 30, dtype=float).reshape(2, 30)
    indices = np.r_[np.arange(20), np.arange(25, 35)]          # 5 samples lost in transport
    rec.add("raw_device_data", 0, emg, 100.0 + indices / 1000.0, indices)
    markers = np.arange(3 * 2 * 3, dtype=float).reshape(3, 2, 3) + 1.0
    markers[:, 1, 1] = 0.0                                     # occluded (Vicon zeros)
    rec.add("marker_set_data", 0, markers, 100.0 + np.arange(3) / 100, np.arange(3) + 40)
    rec.add("kinematics_data", 0, np.array([[0.5, 0.25]]), 100.0 + np.array([0.0, 0.03]),
            np.array([40, 43]))
    assert rec.flush()
    rec.stop()
    target = tmp_path / "session.mcap"
    assert bio_convert([str(path), "-o", str(target)]) == 0
    got = {}
    with open(target, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, message, ros in reader.iter_decoded_messages(log_time_order=False):
            got.setdefault(channel.topic, []).append((schema.name, message.log_time, ros))
    chunks = [ros for _, _, ros in got["/emg/raw"]]
    assert [(c.first_sample_index, c.sample_count) for c in chunks] == [(0, 20), (25, 10)]
    np.testing.assert_array_equal(np.reshape(chunks[1].data, (10, 2)), emg[:, 20:].T)
    assert got["/emg/raw"][1][1] == round((100.0 + 0.025) * 1e9)
    frames = [ros for _, _, ros in got["/markers"]]
    assert [f.frame_number for f in frames] == [40, 41, 42] and got["/markers"][0][0] == MARKERS_TYPE
    assert frames[1].occluded == [False, True] and np.isnan(frames[1].positions[1].x)
    assert frames[0].positions[0].x == pytest.approx(markers[0, 0, 0] / 1000.0)
    joints = [ros for _, _, ros in got["/ik/joint_states"]]
    assert [j.position for j in joints] == [[0.5], [0.25]] and joints[0].name == ["q0"]
    assert bio_convert([str(path), "-o", str(tmp_path / "x.txt")]) == 2


MARKERS_TYPE = "biosig_ros/msg/MarkerSet"
