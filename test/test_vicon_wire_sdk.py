"""Vicon's own client library (DataStream SDK 1.11, through biosig_ros's ctypes binding)
connected to the wire simulator: every marker equal to the file, occlusions flagged, frame
numbers consecutive, analog channels equal, two subjects told apart; pull modes; reconnects."""
import numpy as np
import pytest

from biosig_ros.devices.vicon_wire import ViconWireServer
from ros_harness import wait_until
from vicon_wire_support import OFFSET_MM, SECOND, SUBJECT, nexus_scene, require_sdk_library

pytestmark = pytest.mark.usefixtures("sdk")


@pytest.fixture
def sdk():
    require_sdk_library()


@pytest.fixture
def setup(tmp_path):
    scene, truth = nexus_scene(tmp_path)
    # A generous backlog: pre-fetch stays consecutive through long pauses of a loaded machine.
    server = ViconWireServer(scene, port=0, max_backlog_s=120).start()
    yield server, truth
    server.stop()


def connect(server, mode="EServerPush", buffer_size=1):
    from biosig_ros.devices.vicon_sdk_client import Client

    client = Client()
    client.Connect(server.address)
    client.EnableMarkerData()
    client.EnableDeviceData()
    client.SetStreamMode(getattr(Client.StreamMode, mode))
    if buffer_size > 1:
        client.SetBufferSize(buffer_size)
    # The SDK sends the kinds of data it wants only after reading a packet: the first frames
    # may lack some. Wait for a frame with everything.
    assert wait_until(lambda: client.GetFrame() and _complete(client), timeout=30), \
        "no complete frame from the simulator"
    # the device data can come a frame or two after the markers (each type is applied apart)
    wait_until(lambda: _emg_present(client) or (client.GetFrame() and _emg_present(client)),
               timeout=5)
    return client


def _complete(client):
    names = client.GetSubjectNames()
    if SUBJECT not in names or not client.GetDeviceNames():
        return False
    markers = [m for m, _ in client.GetMarkerNames(SUBJECT)]
    return any(not client.GetMarkerGlobalTranslation(SUBJECT, m)[1] for m in markers)


def _emg_present(client) -> bool:
    details = client.GetDeviceOutputDetails("EMG")
    return bool(details) and not client.GetDeviceOutputValues("EMG", *details[0][:2])[1]


def check_frame(client, server, truth, device_outputs):
    """Compare the client's current frame with the file; returns its frame number."""
    frame = client.GetFrameNumber()
    row = (frame - server.first_frame) % truth.positions_mm.shape[0]
    for subject, offset in ((SUBJECT, np.zeros(3)), (SECOND, np.asarray(OFFSET_MM))):
        names = [m for m, _ in client.GetMarkerNames(subject)]
        assert names == truth.marker_names
        for index, name in enumerate(names):
            position, occluded = client.GetMarkerGlobalTranslation(subject, name)
            expected = truth.positions_mm[row, index]
            if np.isnan(expected).any():
                assert occluded and position == (0.0, 0.0, 0.0), (frame, subject, name)
            else:
                assert not occluded, (frame, subject, name)
                assert position == tuple(expected + offset), (frame, subject, name)
    k = truth.samples_per_frame
    rows = np.arange(row * k, row * k + k) % truth.emg.shape[0]
    for channel, (output, component) in enumerate(device_outputs):
        values, occluded = client.GetDeviceOutputValues("EMG", output, component)
        assert not occluded
        assert np.array_equal(np.asarray(values, dtype=np.float32), truth.emg[rows, channel])
    return frame


def test_server_push_reads_the_file_exactly(setup):
    server, truth = setup
    client = connect(server, buffer_size=1000)
    assert client.GetVersion()[:3] == (1, 11, 0)
    assert client.GetSubjectNames() == [SUBJECT, SECOND]
    assert client.GetFrameRate() == truth.frame_rate
    details = client.GetDeviceOutputDetails("EMG")
    assert [d[0] for d in details] == truth.emg_names
    assert all(unit.name == "EVolt" for _, _, unit in details)
    outputs = [(output, component) for output, component, _ in details]
    frames = [check_frame(client, server, truth, outputs)]
    while len(frames) < truth.positions_mm.shape[0] + 20:      # past the end of the file
        assert client.GetFrame()
        frames.append(check_frame(client, server, truth, outputs))
    # The SDK's buffer (10 s here) holds what a slow reader has not taken yet.
    assert np.array_equal(np.diff(frames), np.ones(len(frames) - 1)), "frames skipped"
    assert client.GetLatencyTotal() >= 0.0


def test_pre_fetch_gets_every_frame_in_order_across_the_loop(setup):
    server, truth = setup
    client = connect(server, "EClientPullPreFetch")
    outputs = [(o, c) for o, c, _ in client.GetDeviceOutputDetails("EMG")]
    frames = [check_frame(client, server, truth, outputs)]
    while len(frames) < truth.positions_mm.shape[0] + 20:      # past the end of the file
        assert client.GetFrame()
        frames.append(check_frame(client, server, truth, outputs))
    assert np.array_equal(np.diff(frames), np.ones(len(frames) - 1)), "frames skipped"


def test_client_pull_gets_current_frames_of_the_file(setup):
    server, truth = setup
    client = connect(server, "EClientPull")
    outputs = [(o, c) for o, c, _ in client.GetDeviceOutputDetails("EMG")]
    frames = [check_frame(client, server, truth, outputs)]
    while frames[-1] < frames[0] + 5:
        assert client.GetFrame()
        frames.append(check_frame(client, server, truth, outputs))
    assert all(b >= a for a, b in zip(frames, frames[1:]))


def test_dropped_and_restarted_server_is_reconnected(setup):
    server, truth = setup
    client = connect(server)
    before = client.GetFrameNumber()
    server.drop_connections(mid_frame=True)            # closes in the middle of a frame
    assert wait_until(lambda: not client.IsConnected(), timeout=30)
    client = connect(server)
    after_drop = client.GetFrameNumber()
    assert after_drop > before
    server.stop()
    assert wait_until(lambda: not client.IsConnected(), timeout=30)
    from biosig_ros.devices.vicon_sdk_client import Client, DataStreamException

    with pytest.raises(DataStreamException, match="ClientConnectionFailed"):
        Client().Connect(server.address)
    stopped_at = server.current_frame()
    server.start()                                      # same port, the frame clock ran on
    client = connect(server)
    assert client.GetFrameNumber() >= stopped_at >= after_drop
