"""Vicon simulator (SDK-shaped Client), adapter and ViconClient, without ROS."""
import functools
import threading
import time

import numpy as np
import pytest

from biosig_ros.devices.device_link import DISCONNECTED, STREAMING
from biosig_ros.devices.vicon_adapter import ViconAdapter
from biosig_ros.devices.vicon_client import ViconClient, ViconSettings, create_adapter
from biosig_ros.devices.vicon_simulator import (Client, DataStreamException, MarkerRecording,
                                                SimulatedServer, load_marker_recording)
from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import load_bio
from biosig_ros.paths import resolve_data_path

from ros_harness import wait_until

ABD = load_bio(resolve_data_path("data/abd.bio"))
RECORDING_ORDER = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom",
                   "SCAP_AA", "EPICl", "EPICm", "DELT", "ARMl", "LARM_elb", "STYLu", "STYLr"]
MODEL_ORDER = RECORDING_ORDER[:13] + ["STYLu", "LARM_elb", "STYLr"]


def abd_server(**kwargs):
    recording = load_marker_recording("data/abd.bio", RECORDING_ORDER, subject="abd",
                                      analog_key="emg", analog_rate=2000.0)
    return SimulatedServer(recording, **kwargs)


_wait = functools.partial(wait_until, timeout=15.0)


def test_client_has_the_sdk_shapes_and_the_recording_values():
    server = abd_server(occlusions=[("DELT", 0, 700)])
    client = Client(server)
    assert client.IsConnected() is False
    with pytest.raises(DataStreamException, match="NotConnected"):
        client.EnableMarkerData()
    client.Connect("localhost:801")
    with pytest.raises(DataStreamException, match="ClientAlreadyConnected"):
        client.Connect("localhost:801")
    client.EnableMarkerData()
    client.EnableDeviceData()
    client.SetStreamMode(Client.StreamMode.EServerPush)
    with pytest.raises(DataStreamException, match="NoFrame"):
        client.GetFrameNumber()
    assert client.GetFrame() is True
    first = client.GetFrameNumber()
    assert client.GetFrame() is True
    number = client.GetFrameNumber()
    assert number > first       # a newer frame (the next one, unless the test thread was late)
    assert client.GetFrameRate() == 100.0
    assert client.GetSubjectNames() == ["abd"]
    assert client.GetMarkerNames("abd")[:2] == [("STER", "abd"), ("XIPH", "abd")]
    frame = (number - 1) % 700
    position, occluded = client.GetMarkerGlobalTranslation("abd", "STYLu")
    assert occluded is False and isinstance(position, tuple)
    assert position == tuple(ABD["markers"][:, 14, frame])          # millimetres, as recorded
    assert client.GetMarkerGlobalTranslation("abd", "DELT") == ((0.0, 0.0, 0.0), True)
    with pytest.raises(DataStreamException, match="InvalidMarkerName"):
        client.GetMarkerGlobalTranslation("abd", "NOPE")
    with pytest.raises(DataStreamException, match="InvalidSubjectName"):
        client.GetMarkerNames("someone")
    assert client.GetDeviceNames() == [("EMG", Client.DeviceType.EUnknownDevice)]
    details = client.GetDeviceOutputDetails("EMG")
    assert details[0] == ("EMG1", "EMG", Client.Unit.EVolt) and len(details) == 10
    values, occluded = client.GetDeviceOutputValues("EMG", "EMG3", "EMG")
    assert occluded is False and values == list(ABD["emg"][2, frame * 20:frame * 20 + 20])
    assert 0.0 <= client.GetLatencyTotal() < 1.0
    client.Disconnect()
    assert client.IsConnected() is False


def test_server_outage_disconnects_and_frame_numbers_keep_counting():
    server = abd_server()
    client = Client(server)
    client.Connect("sim")
    client.EnableMarkerData()
    client.GetFrame()
    before = client.GetFrameNumber()
    server.go_down()
    assert client.IsConnected() is False
    with pytest.raises(DataStreamException, match="NotConnected"):
        client.GetFrame()
    with pytest.raises(DataStreamException, match="ClientConnectionFailed"):
        client.Connect("sim")
    time.sleep(0.3)
    server.come_back()
    client.Connect("sim")
    client.EnableMarkerData()
    client.GetFrame()
    assert client.GetFrameNumber() >= before + 25      # the system kept capturing meanwhile


def test_scheduled_outage_and_buffered_frames():
    clock = [100.0]
    recording = MarkerRecording(np.arange(30, dtype=float).reshape(5, 2, 3) + 1, ["a", "b"],
                                10.0, "s")
    server = SimulatedServer(recording, outages=[(1.0, 0.5)], clock=lambda: clock[0])
    client = Client(server)
    client.Connect("sim")
    client.EnableMarkerData()
    client.SetBufferSize(5)
    clock[0] = 100.35                                  # frames 1..4 exist
    client.GetFrame()
    assert client.GetFrameNumber() == 4
    clock[0] = 100.75                                  # frames 5..8: buffered, taken in order
    client.GetFrame()
    assert client.GetFrameNumber() == 5
    client.GetFrame()
    assert client.GetFrameNumber() == 6
    assert client.GetMarkerGlobalTranslation("s", "b") == ((4.0, 5.0, 6.0), False)  # row 0
    clock[0] = 101.2                                   # inside the outage
    assert not client.IsConnected()
    with pytest.raises(DataStreamException):
        client.Connect("sim")
    clock[0] = 101.6
    client.Connect("sim")
    assert client.IsConnected()


def test_adapter_without_any_sdk_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setenv("BIOSIG_ROS_VICON_SDK", str(tmp_path))      # an empty build directory
    with pytest.raises(ConfigError) as error:
        create_adapter(ViconSettings(backend="sdk"))
    text = str(error.value)
    assert "vicon_dssdk" in text and "tools/bootstrap.sh" in text and "\n" not in text
    assert str(tmp_path) in text and "backend: simulator" in text


@pytest.mark.parametrize("values, parameter", [
    (dict(backend="nexus"), "backend"),
    (dict(stream_mode="Push"), "stream_mode"),
    (dict(buffer_size=0), "buffer_size"),
    (dict(marker_names=["A", "A"]), "marker_names"),
    (dict(frame_timeout=0.0), "frame_timeout"),
    (dict(sim_occlusions=["ARMl:10"]), "sim_occlusions"),
    (dict(sim_occlusions=["ARMl:10:5"]), "sim_occlusions"),
    (dict(sim_outages=["x:1"]), "sim_outages"),
    (dict(host=""), "host"),
])
def test_bad_settings_name_the_parameter(values, parameter):
    with pytest.raises(ConfigError, match=f"'{parameter}'"):
        ViconSettings(**values)


def test_simulator_recording_errors_are_config_errors():
    with pytest.raises(ConfigError, match="16 markers but marker_names lists 2"):
        create_adapter(ViconSettings(backend="simulator", sim_marker_names=["a", "b"]))
    with pytest.raises(ConfigError, match="not found"):
        create_adapter(ViconSettings(backend="simulator", sim_recording="data/nothing.bio"))
    with pytest.raises(ConfigError, match="unknown marker 'X'"):
        create_adapter(ViconSettings(backend="simulator", sim_occlusions=["X:1:2"]))


def test_c3d_recordings_are_read_in_millimetres(tmp_path):
    ezc3d = pytest.importorskip("ezc3d")
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [50]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = ("A", "B", "C")
    c3d["parameters"]["POINT"]["UNITS"]["value"] = ["m"]
    points = np.ones((4, 3, 6))
    points[:3] = np.arange(3 * 3 * 6).reshape(3, 3, 6) * 0.001
    c3d["data"]["points"] = points
    c3d["parameters"]["ANALOG"]["RATE"]["value"] = [500]
    c3d["parameters"]["ANALOG"]["LABELS"]["value"] = ("E1", "E2")
    c3d["data"]["analogs"] = np.arange(2 * 60, dtype=float).reshape(1, 2, 60)
    path = tmp_path / "trial.c3d"
    c3d.write(str(path))
    recording = load_marker_recording(str(path), ["C", "A"], subject="s", analog_names=["E2"])
    assert recording.marker_names == ["C", "A"] and recording.frame_rate == 50.0
    assert recording.positions_mm.shape == (6, 2, 3)
    assert np.allclose(recording.positions_mm[1, 0], points[:3, 2, 1] * 1000.0)
    assert recording.analog_names == ("E2",) and recording.subsamples == 10
    assert recording.analog[:, 0].tolist() == list(range(60, 120))


class Collector:
    def __init__(self):
        self.frames, self.analog = [], []
        self.lock = threading.Lock()

    def on_frame(self, frame):
        with self.lock:
            self.frames.append(frame)

    def on_analog(self, chunk):
        with self.lock:
            self.analog.append(chunk)


def test_vicon_client_streams_metres_in_the_requested_order_with_occlusions():
    server = abd_server(occlusions=[("ARMl", 0, 699)])
    settings = ViconSettings(backend="simulator", marker_names=MODEL_ORDER,
                             analog_device="EMG", analog_outputs=["EMG2", "EMG1"],
                             retry_interval=0.2, buffer_size=1000)   # late, never skipped
    got = Collector()
    client = ViconClient(settings, ViconAdapter.for_simulator(server), got.on_frame,
                         got.on_analog)
    client.start()
    try:
        assert _wait(lambda: len(got.frames) >= 30)
    finally:
        client.stop()
    markers = ABD["markers"]
    for frame in got.frames:
        row = (frame.frame_number - 1) % 700
        assert frame.marker_names == MODEL_ORDER and frame.subject == "abd"
        expected = markers[:, [RECORDING_ORDER.index(n) for n in MODEL_ORDER], row].T / 1000.0
        arml = MODEL_ORDER.index("ARMl")
        assert frame.occluded.tolist() == [i == arml for i in range(16)]
        assert np.all(np.isnan(frame.positions[arml]))
        visible = np.arange(16) != arml
        assert np.array_equal(frame.positions[visible], expected[visible])
    numbers = [f.frame_number for f in got.frames]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    stamps = np.array([f.stamp for f in got.frames])
    assert np.allclose(np.diff(stamps), 0.01, atol=2e-3)   # capture times, not arrival times
    for chunk in got.analog:
        row = (chunk.first_sample_index // 20 - 1) % 700
        assert chunk.channel_names == ["EMG2", "EMG1"] and chunk.unit == "V"
        assert chunk.sample_rate == 2000.0 and chunk.sample_count == 20
        assert np.array_equal(chunk.data, ABD["emg"][[1, 0], row * 20:row * 20 + 20].T)
    assert [c.first_sample_index for c in got.analog] == [n * 20 for n in numbers[:len(got.analog)]]


def test_vicon_client_recovers_after_the_server_comes_back():
    server = abd_server()
    got = Collector()
    statuses = []
    client = ViconClient(ViconSettings(backend="simulator", retry_interval=0.1, buffer_size=1000),
                         ViconAdapter.for_simulator(server), got.on_frame,
                         on_status=statuses.append)
    client.start()
    try:
        assert _wait(lambda: len(got.frames) >= 10)
        server.go_down()
        assert _wait(lambda: client.status.state == DISCONNECTED)
        assert client.status.message.startswith("device lost: Vicon")
        time.sleep(0.5)
        lost_at = len(got.frames)
        server.come_back()
        assert _wait(lambda: len(got.frames) >= lost_at + 10)
        assert client.status.state == STREAMING and client.status.sessions == 2
    finally:
        client.stop()
    numbers = [f.frame_number for f in got.frames]
    jumps = [b - a for a, b in zip(numbers, numbers[1:]) if b != a + 1]
    assert len(jumps) == 1 and jumps[0] > 40                 # the outage shows as dropped frames
    assert client.dropped_frames == jumps[0] - 1             # ... and they are counted
    assert got.frames[-1].marker_names == RECORDING_ORDER    # default: all, in SDK order


def test_the_sdk_backend_drives_a_module_shaped_like_vicon_dssdk(monkeypatch):
    """backend sdk imports vicon_dssdk.ViconDataStream and calls Client() without arguments:
    a stand-in module with that layout (the simulator behind it) streams through it."""
    import sys
    import types

    from biosig_ros.devices import vicon_simulator

    server = abd_server()
    module = types.ModuleType("vicon_dssdk.ViconDataStream")
    module.DataStreamException = vicon_simulator.DataStreamException

    class SdkClient(vicon_simulator.Client):
        def __init__(self):                       # the SDK's signature
            super().__init__(server)

    module.Client = SdkClient
    package = types.ModuleType("vicon_dssdk")
    package.ViconDataStream = module
    monkeypatch.setitem(sys.modules, "vicon_dssdk", package)
    monkeypatch.setitem(sys.modules, "vicon_dssdk.ViconDataStream", module)
    settings = ViconSettings(backend="sdk", host="10.0.0.7:801", subject="abd",
                             marker_names=["STYLr", "STER"], buffer_size=1000)
    got = Collector()
    client = ViconClient(settings, create_adapter(settings), got.on_frame)
    client.start()
    try:
        assert _wait(lambda: len(got.frames) >= 5)
    finally:
        client.stop()
    frame = got.frames[-1]
    row = (frame.frame_number - 1) % 700
    assert frame.marker_names == ["STYLr", "STER"]
    assert np.array_equal(frame.positions, ABD["markers"][:, [15, 0], row].T / 1000.0)
