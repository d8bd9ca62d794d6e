"""The wire simulator's encoders alone: each object's bytes read back in the field order of
Vicon's ViconCGStream headers (a decoder written here, independent of the encoders)."""
import struct

import numpy as np
import pytest

from biosig_ros.devices.vicon_wire import objects as obj
from biosig_ros.devices.vicon_wire import wire_format as wf
from biosig_ros.devices.vicon_wire.connection import _allowed
from biosig_ros.devices.vicon_wire.scene import FrameBuilder, Item, WireDevice, WireScene, \
    WireSubject
from biosig_ros.errors import ConfigError


class Cursor:
    def __init__(self, data):
        self.data, self.at = data, 0

    def get(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def text(self):
        n = self.get("I")
        value = self.data[self.at:self.at + n].decode()
        self.at += n
        return value

    def done(self):
        return self.at == len(self.data)


def blocks_of(packet_bytes):
    tag, length = struct.unpack_from("<II", packet_bytes)
    assert tag == 0x1A2B0001 and length == len(packet_bytes) - 8
    return list(wf.split_packet(packet_bytes[8:]))


def test_packet_and_block_framing():
    data = wf.packet([wf.block(wf.FRAME_INFO, obj.frame_info(42)), wf.block(wf.KEEP_ALIVE, b"")])
    assert data[:4] == bytes.fromhex("01002b1a")          # little-endian OBJECTS tag
    objects = blocks_of(data)
    assert [(o.type_id, o.body) for o in objects] == [(5, struct.pack("<I", 42)), (100003, b"")]


def test_truncated_object_is_a_wire_error():
    with pytest.raises(wf.WireError):
        list(wf.split_packet(struct.pack("<II", 5, 10) + b"abc"))


def test_subject_info_field_order():
    body = obj.subject_info(3, "Subj01", [(0, 1, "Subj01")], [(1, "LASI"), (2, "RASI")],
                            [(1, 1), (2, 1)])
    c = Cursor(body)
    assert c.get("I") == 3 and c.text() == "Subj01"
    assert c.get("I") == 1                                             # segments
    assert c.get("II") == (0, 1) and c.get("6f") == (0.0,) * 6 and c.text() == "Subj01"
    assert c.get("I") == 2                                             # markers
    assert [(c.get("I"), c.text()) for _ in range(2)] == [(1, "LASI"), (2, "RASI")]
    assert c.get("I") == 2 and [c.get("II") for _ in range(2)] == [(1, 1), (2, 1)]
    assert c.done()


def test_labeled_recons_are_doubles_in_header_order():
    positions = np.array([[1.5, -2.25, 3e3], [4.0, 5.0, 6.0]], dtype=np.float32)
    c = Cursor(obj.labeled_recons(np.array([1, 2]), np.array([7, 9]), positions))
    assert c.get("I") == 2
    for subject, marker, position in [(1, 7, positions[0]), (2, 9, positions[1])]:
        assert c.get("II") == (subject, marker)
        c.get("d")                                                     # radius
        assert c.get("3d") == tuple(float(v) for v in position)        # float32 exactly
        assert c.get("9d") == (0.0,) * 9
        assert c.get("I") == marker                                    # trajectory id
    assert c.done()


def test_timecode_latency_rate_and_stream_info():
    c = Cursor(obj.timecode(1, 2, 3, 4, 5, 6, standard=0, user_bits=7, field_flag=1))
    assert c.get("BBBBHHIIB") == (1, 2, 3, 4, 5, 6, 0, 7, 1) and c.done()
    c = Cursor(obj.latency_info([("Simulator", 0.004)]))
    assert c.get("I") == 1 and c.text() == "Simulator" and c.get("d") == 0.004 and c.done()
    c = Cursor(obj.frame_rate_info({"System": 100.0}))
    assert c.get("I") == 1 and c.text() == "System" and c.get("d") == 100.0 and c.done()
    assert obj.stream_info(obj.frame_period_ticks(100.0)) == struct.pack("<q", 1_350_000)


def test_device_channel_and_voltage_frames():
    c = Cursor(obj.device_info(2, 1_350_000, "EMG"))
    assert c.get("IQ") == (2, 1_350_000) and c.text() == "EMG" and c.done()
    c = Cursor(obj.channel_info(2, 5, "EMG5", ["EMG"]))
    assert c.get("II") == (2, 5) and c.text() == "EMG5" and c.get("I") == 1 and c.text() == "EMG"
    samples = np.linspace(-1e-3, 1e-3, 20).astype(np.float32)
    c = Cursor(obj.voltage_frame(10, 2, 5, samples))
    assert c.get("IIII") == (10, 2, 5, 20)
    assert np.array_equal(np.array(c.get("20f"), dtype=np.float32), samples) and c.done()


def test_requests_read_back():
    assert wf.read_object_enums(wf.u32_set([6, 2, 100004])) == {2, 6, 100004}
    assert wf.read_request_frame(b"\x01") is True and wf.read_request_frame(b"\x00") is False
    filters = wf.read_filter(struct.pack("<I", 1) + struct.pack("<I", 9) + wf.u32_set([1, 3]))
    assert filters == {9: {1, 3}}
    assert wf.read_ping(struct.pack("<Q", 2**40)) == 2**40


def test_filter_allows_like_vicon():
    subject2 = Item(wf.SUBJECT_INFO, b"", 2)
    recons = Item(wf.LABELED_RECONS, b"")
    assert _allowed({}, subject2)
    assert not _allowed({wf.SUBJECT_INFO: {1}}, subject2)
    assert _allowed({wf.SUBJECT_INFO: {1, 2}}, subject2)
    assert _allowed({wf.SUBJECT_INFO: {1}}, recons)                   # type not filtered


def scene(rate=100.0):
    positions = np.arange(4 * 2 * 3, dtype=float).reshape(4, 2, 3) + 1
    positions[1, 0] = np.nan                                          # occluded
    positions[2, 1] = 0.0                                             # Vicon's occluded
    emg = np.arange(4 * 20 * 2, dtype=np.float32).reshape(80, 2)
    return WireScene(rate, [WireSubject("A", ["m1", "m2"], positions),
                            WireSubject("B", ["m1", "m2"], positions + 100)],
                     [WireDevice("EMG", ["EMG1", "EMG2"], emg, 20)])


def recons_of(items):
    (item,) = [i for i in items if i.type_id == wf.LABELED_RECONS]
    c = Cursor(item.data[8:])
    found = {}
    for _ in range(c.get("I")):
        subject, marker = c.get("II")
        c.get("d")
        found[(subject, marker)] = c.get("3d")
        c.get("9d"), c.get("I")
    return found


def test_frames_leave_occluded_markers_out_and_tell_subjects_apart():
    builder = FrameBuilder(scene(), first_frame=1)
    assert set(recons_of(builder.frame_items(1))) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert set(recons_of(builder.frame_items(2))) == {(1, 2), (2, 2)}   # NaN in both
    assert set(recons_of(builder.frame_items(3))) == {(1, 1), (2, 1), (2, 2)}
    frame = recons_of(builder.frame_items(1))
    assert frame[(2, 1)][0] - frame[(1, 1)][0] == 100
    assert recons_of(builder.frame_items(5)) == frame                 # the recording loops


def test_frames_carry_each_channel_frame_aligned():
    builder = FrameBuilder(scene(), first_frame=1)
    voltages = [i for i in builder.frame_items(3) if i.type_id == wf.VOLTAGE_FRAME]
    assert [v.filter_id for v in voltages] == [1, 1]
    c = Cursor(voltages[1].data[8:])
    assert c.get("IIII") == (2, 1, 2, 20)          # wire ids: frame number - 1
    expected = np.arange(160, dtype=np.float32).reshape(80, 2)[40:60, 1]
    assert np.array_equal(np.array(c.get("20f"), dtype=np.float32), expected)


def test_scene_checks():
    with pytest.raises(ConfigError, match="135 MHz"):
        scene(rate=7.0)
    with pytest.raises(ConfigError, match="unique"):
        WireScene(100.0, [WireSubject("A", ["m"], np.zeros((1, 1, 3)))] * 2)
    with pytest.raises(ConfigError, match="names"):
        WireSubject("A", ["m1"], np.zeros((2, 2, 3)))


def test_scene_from_a_c3d_with_two_subjects_and_an_analog_device(tmp_path):
    import ezc3d

    from biosig_ros.devices.vicon_wire.recording_scene import scene_from_file

    frames, rate = 30, 100
    rng = np.random.default_rng(1)
    points = rng.uniform(-1000, 1000, (3, 4, frames))
    points[:, 1, 3:6] = 0.0                                          # Vicon's gap: zeros
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [rate]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = ["Ann:HEAD", "Ann:HAND", "Bob:HEAD",
                                                     "Bob:HAND"]
    c3d["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c3d["data"]["points"] = np.concatenate([points, np.ones((1, 4, frames))])
    c3d["parameters"]["ANALOG"]["RATE"]["value"] = [1000]
    c3d["parameters"]["ANALOG"]["LABELS"]["value"] = ["EMG1", "EMG2"]
    c3d["parameters"]["ANALOG"]["UNITS"]["value"] = ["mV", "mV"]
    analogs = rng.normal(0, 1, (1, 2, frames * 10))
    c3d["data"]["analogs"] = analogs
    path = tmp_path / "two.c3d"
    c3d.write(str(path))
    stored = ezc3d.c3d(str(path))

    scene = scene_from_file(str(path), subjects=["Ann", "Bob"], occlusions=[("HEAD", 0, 1)])
    assert [s.name for s in scene.subjects] == ["Ann", "Bob"]
    assert all(s.marker_names == ["HEAD", "HAND"] for s in scene.subjects)
    ann, bob = scene.subjects
    file_points = np.transpose(stored["data"]["points"][:3], (2, 1, 0))
    assert np.array_equal(bob.positions_mm, file_points[:, 2:4])
    assert np.isnan(ann.positions_mm[3:6, 1]).all() and np.isnan(ann.positions_mm[0:2, 0]).all()
    assert np.array_equal(ann.positions_mm[6:, 1], file_points[6:, 1])
    (device,) = scene.devices
    assert device.samples_per_frame == 10 and device.channel_names == ["EMG1", "EMG2"]
    volts = (stored["data"]["analogs"][0].T * 1e-3).astype(np.float32)   # mV in the file
    assert np.array_equal(device.samples, volts)
