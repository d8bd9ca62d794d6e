"""The project's binding over Vicon's own DataStream SDK library (built by tools/bootstrap.sh),
ViconAdapter and ViconClient against the wire-protocol simulator, in this process, no ROS.

Skipped only when the SDK build is absent (CI builds it with bootstrap)."""
import functools
import socket
import threading
import time

import numpy as np
import pytest

from biosig_ros.devices import vicon_sdk_library
from biosig_ros.devices.device_link import DeviceError, STREAMING
from biosig_ros.devices.vicon_client import ViconClient, ViconSettings, create_adapter
from biosig_ros.devices.vicon_wire.recording_scene import scene_from_file
from biosig_ros.devices.vicon_wire.server import ViconWireServer
from biosig_ros.io.bio_file import load_bio
from biosig_ros.io.recording import RecordingSettings
from biosig_ros.paths import resolve_data_path

from ros_harness import free_port, wait_until

pytestmark = pytest.mark.skipif(
    not vicon_sdk_library.library_path().is_file(),
    reason=f"Vicon DataStream SDK not built ({vicon_sdk_library.library_path()} missing): "
           "run tools/bootstrap.sh")

ABD = load_bio(resolve_data_path("data/abd.bio"))
RECORDING_ORDER = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom",
                   "SCAP_AA", "EPICl", "EPICm", "DELT", "ARMl", "LARM_elb", "STYLu", "STYLr"]
MODEL_ORDER = RECORDING_ORDER[:13] + ["STYLu", "LARM_elb", "STYLr"]
FRAMES = ABD["markers"].shape[2]
_wait = functools.partial(wait_until, timeout=20.0)


def abd_scene(**kwargs):
    settings = RecordingSettings(marker_names=RECORDING_ORDER)
    return scene_from_file(str(resolve_data_path("data/abd.bio")), subjects=["abd"],
                           settings=settings, **kwargs)


def recorded_mm(frame_number, markers=RECORDING_ORDER):
    """The recording's positions (markers x 3, mm) for a frame, as the wire carries them."""
    row = (frame_number - 1) % FRAMES
    columns = [RECORDING_ORDER.index(n) for n in markers]
    return ABD["markers"][:, columns, row].T.astype(np.float32).astype(float)


class Collector:
    def __init__(self):
        self.frames, self.analog, self.lock = [], [], threading.Lock()

    def on_frame(self, frame):
        with self.lock:
            self.frames.append(frame)

    def on_analog(self, chunk):
        with self.lock:
            self.analog.append(chunk)


def test_binding_reads_two_subjects_occlusions_and_analog_as_recorded():
    from biosig_ros.devices.vicon_sdk_client import Client, DataStreamException

    scene = abd_scene(copies=[("object2", (500.0, 0.0, 0.0))], occlusions=[("DELT", 0, 699)])
    with ViconWireServer(scene, port=0) as server:
        client = Client()
        assert client.GetVersion()[:2] == (1, 11)
        client.Connect(server.address)
        assert client.IsConnected()
        client.SetBufferSize(1000)          # a loaded machine: late frames kept, not skipped
        client.EnableMarkerData()
        client.EnableDeviceData()
        client.SetStreamMode(Client.StreamMode.EServerPush)
        assert client.GetFrame() is True
        with pytest.raises(DataStreamException, match="InvalidSubjectName"):
            client.GetMarkerNames("nobody")
        # The enables reach the server from the client's I/O thread: the first frames may lack
        # the EMG (more of them on a loaded machine; the adapter pulls until one has it too).
        for _ in range(1000):
            if client.GetDeviceNames():
                try:
                    if not client.GetDeviceOutputValues("EMG", "EMG1", "EMG")[1]:
                        break
                except DataStreamException:
                    pass
            assert client.GetFrame() is True
        numbers = []
        for _ in range(20):
            assert client.GetFrame() is True
            number = client.GetFrameNumber()
            numbers.append(number)
            assert client.GetFrameRate() == 100.0
            assert 0.0 <= client.GetLatencyTotal() < 1.0
            assert client.GetSubjectNames() == ["abd", "object2"]
            assert [m for m, _ in client.GetMarkerNames("abd")] == RECORDING_ORDER
            for subject, offset in (("abd", 0.0), ("object2", 500.0)):
                expected = recorded_mm(number)
                for i, name in enumerate(RECORDING_ORDER):
                    position, occluded = client.GetMarkerGlobalTranslation(subject, name)
                    if name == "DELT":         # hidden before object2 was copied
                        assert occluded is True and position == (0.0, 0.0, 0.0)
                        continue
                    assert occluded is False
                    want = expected[i] + np.array([offset, 0.0, 0.0], dtype=np.float32)
                    assert np.array_equal(np.float32(position), np.float32(want))
            assert client.GetDeviceNames() == [("EMG", Client.DeviceType.EUnknownDeviceType)]
            details = client.GetDeviceOutputDetails("EMG")
            assert details[0] == ("EMG1", "EMG", Client.Unit.EVolt) and len(details) == 10
            row = (number - 1) % FRAMES
            for channel in (0, 9):
                values, occluded = client.GetDeviceOutputValues("EMG", f"EMG{channel + 1}",
                                                                "EMG")
                assert occluded is False
                assert np.array_equal(np.float32(values), np.float32(
                    ABD["emg"][channel, row * 20:row * 20 + 20]))
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        client.Disconnect()
        assert not client.IsConnected()


@pytest.mark.parametrize("buffer_size", [1, 200])
def test_the_buffer_size_keeps_frames_for_a_late_reader(buffer_size):
    """Vicon's C API 1.11 Client_SetBufferSize does not set the buffer; the binding's does."""
    from biosig_ros.devices.vicon_sdk_client import Client

    with ViconWireServer(abd_scene(analog=False), port=0) as server:
        client = Client()
        client.Connect(server.address)
        client.EnableMarkerData()
        client.SetStreamMode(Client.StreamMode.EServerPush)
        client.SetBufferSize(buffer_size)
        assert client.GetFrame()
        first = client.GetFrameNumber()
        # the server has sent 30 more frames (they reach the client's buffer meanwhile)
        assert wait_until(lambda: (server.connections()[0].last_frame or 0) > first + 30, 20)
        time.sleep(0.2)
        assert client.GetFrame()
        second = client.GetFrameNumber()
    if buffer_size == 1:
        assert second > first + 1           # a newer frame: the ones between were dropped
    else:
        assert second == first + 1          # the next frame: kept for the late reader


def test_vicon_client_through_the_library_streams_the_recording_in_metres():
    with ViconWireServer(abd_scene(occlusions=[("ARMl", 0, 699)]), port=0) as server:
        settings = ViconSettings(backend="sdk", host=server.address, marker_names=MODEL_ORDER,
                                 analog_device="EMG", analog_outputs=["EMG2", "EMG1"],
                                 retry_interval=0.2, buffer_size=1000)
        adapter = create_adapter(settings)
        assert "built by tools/bootstrap.sh" in adapter.description
        got = Collector()
        client = ViconClient(settings, adapter, got.on_frame, got.on_analog)
        client.start()
        try:
            assert _wait(lambda: len(got.frames) >= 50)
        finally:
            client.stop()
    arml = MODEL_ORDER.index("ARMl")
    for frame in got.frames:
        assert frame.marker_names == MODEL_ORDER and frame.subject == "abd"
        assert frame.occluded.tolist() == [i == arml for i in range(16)]
        visible = np.arange(16) != arml
        expected = recorded_mm(frame.frame_number, MODEL_ORDER) / 1000.0
        assert np.array_equal(frame.positions[visible], expected[visible])
        assert np.all(np.isnan(frame.positions[arml]))
    numbers = [f.frame_number for f in got.frames]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert client.dropped_frames == 0
    for chunk in got.analog:
        row = (chunk.first_sample_index // 20 - 1) % FRAMES
        assert chunk.channel_names == ["EMG2", "EMG1"] and chunk.unit == "V"
        assert chunk.sample_rate == 2000.0 and chunk.sample_count == 20
        assert np.array_equal(chunk.data.astype(np.float32),
                              ABD["emg"][[1, 0], row * 20:row * 20 + 20].T.astype(np.float32))


@pytest.mark.parametrize("mode", ["ClientPull", "ClientPullPreFetch"])
def test_client_pull_modes_deliver_consecutive_frames(mode):
    with ViconWireServer(abd_scene(), port=0) as server:
        settings = ViconSettings(backend="sdk", host=server.address, stream_mode=mode,
                                 subject="abd", marker_names=["STER"], buffer_size=1000)
        got = Collector()
        client = ViconClient(settings, create_adapter(settings), got.on_frame)
        client.start()
        try:
            assert _wait(lambda: len(got.frames) >= 30)
        finally:
            client.stop()
    for frame in got.frames:
        assert np.array_equal(frame.positions, recorded_mm(frame.frame_number, ["STER"]) / 1e3)
    numbers = [f.frame_number for f in got.frames]
    assert all(b > a for a, b in zip(numbers, numbers[1:]))


def test_a_closed_port_fails_at_once_naming_host_and_port():
    port = free_port()
    settings = ViconSettings(backend="sdk", host=f"127.0.0.1:{port}", connect_timeout=30.0)
    client = ViconClient(settings, create_adapter(settings), lambda frame: None)
    with pytest.raises(DeviceError) as error:
        client.open()
    text = str(error.value)
    assert f"127.0.0.1:{port}" in text and "ClientConnectionFailed" in text and "\n" not in text


def test_a_host_that_never_answers_fails_after_connect_timeout():
    # A listening socket whose backlog is full: the kernel drops further SYNs, so the SDK's
    # connect blocks as for a host that does not answer.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        settings = ViconSettings(backend="sdk", host=f"127.0.0.1:{port}", connect_timeout=0.5)
        client = ViconClient(settings, create_adapter(settings), lambda frame: None)
        with pytest.raises(DeviceError) as error:
            client.open()
        for filler in fillers:
            filler.close()
    text = str(error.value)
    assert f"127.0.0.1:{port}" in text and "within 0.5 s" in text and "\n" not in text


def test_reconnects_after_the_server_restarts_and_counts_the_outage():
    scene = abd_scene()
    server = ViconWireServer(scene, port=0).start()
    port = server.port
    settings = ViconSettings(backend="sdk", host=f"127.0.0.1:{port}", subject="abd",
                             marker_names=["STER", "STYLr"], retry_interval=0.1,
                             buffer_size=1000)
    got = Collector()
    client = ViconClient(settings, create_adapter(settings), got.on_frame)
    client.start()
    try:
        assert _wait(lambda: len(got.frames) >= 20)
        server.drop_connections(mid_frame=True)      # a server that closes in a frame's middle
        assert _wait(lambda: client.status.sessions >= 2 and len(got.frames) >= 40)
        server.stop()
        down_from = server.current_frame()
        assert _wait(lambda: client.status.state != STREAMING)
        time.sleep(0.5)
        up_from = server.current_frame()
        server.start()                                # same port, the frame clock ran on
        assert _wait(lambda: client.status.sessions >= 3 and
                     got.frames[-1].frame_number > up_from + 20)
    finally:
        client.stop()
        server.stop()
    numbers = [f.frame_number for f in got.frames]
    assert all(b > a for a, b in zip(numbers, numbers[1:]))
    jumps = [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1]
    outage = [(a, b) for a, b in jumps if a <= down_from and b >= up_from]
    assert len(outage) == 1                           # the outage is one jump over its frames
    assert client.dropped_frames == sum(b - a - 1 for a, b in jumps)
    for frame in got.frames:
        assert np.array_equal(frame.positions,
                              recorded_mm(frame.frame_number, ["STER", "STYLr"]) / 1e3)
