"""ViconAdapter's bounded connect with a client whose Connect blocks until released (no
sockets, no SDK): one attempt at a time, its client taken once it gets through."""
import threading
import types

import pytest

from biosig_ros.devices.device_link import DeviceError
from biosig_ros.devices.vicon_adapter import ViconAdapter


class DataStreamException(Exception):
    pass


class BlockingClient:
    """Connect waits for `release`; then succeeds (or raises `fail`)."""

    created: list = []
    release = threading.Event()
    fail = None

    class StreamMode:
        EServerPush, EClientPull, EClientPullPreFetch = range(3)

    def __init__(self):
        BlockingClient.created.append(self)
        self.connected = False
        self.calls = []

    def Connect(self, host):
        BlockingClient.release.wait(30)
        if BlockingClient.fail:
            raise DataStreamException(BlockingClient.fail)
        self.connected = True

    def IsConnected(self):
        return self.connected

    def Disconnect(self):
        self.connected = False

    def GetSubjectNames(self):            # a scene with one visible marker: the warm-up
        return ["subject"]                # pulls end at once

    def GetMarkerNames(self, subject):
        return [("M1", "root")]

    def GetMarkerGlobalTranslation(self, subject, name):
        return (1.0, 2.0, 3.0), False

    def __getattr__(self, name):          # SetBufferSize, Enable*, GetFrame, SetStreamMode
        return lambda *args: self.calls.append(name) or True


@pytest.fixture
def adapter():
    BlockingClient.created, BlockingClient.fail = [], None
    BlockingClient.release = threading.Event()
    module = types.SimpleNamespace(Client=BlockingClient,
                                   DataStreamException=DataStreamException)
    yield ViconAdapter(module, BlockingClient)
    BlockingClient.release.set()


def test_a_silent_host_times_out_and_retries_wait_for_the_same_attempt(adapter):
    for _ in range(3):
        with pytest.raises(DeviceError, match=r"no Vicon DataStream server answered at "
                                              r"10\.0\.0\.7:801 within 0\.05 s"):
            adapter.connect("10.0.0.7", "ServerPush", 50, False, timeout=0.05)
    assert len(BlockingClient.created) == 1          # no new thread per retry
    BlockingClient.release.set()                     # the host answers at last
    adapter.connect("10.0.0.7", "ServerPush", 50, False, timeout=5.0)
    assert len(BlockingClient.created) == 1 and adapter.is_connected()
    client = BlockingClient.created[0]
    assert client.calls[0] == "SetBufferSize" and client.calls[-1] == "SetStreamMode"


def test_a_refused_connection_names_host_and_port_and_the_next_try_is_new(adapter):
    BlockingClient.release.set()
    BlockingClient.fail = "ClientConnectionFailed"
    with pytest.raises(DeviceError) as error:
        adapter.connect("192.168.1.5:802", "ClientPull", 1, False, timeout=5.0)
    assert str(error.value) == ("cannot connect to a Vicon DataStream server at "
                                "192.168.1.5:802 (ClientConnectionFailed)")
    BlockingClient.fail = None
    adapter.connect("192.168.1.5:802", "ClientPull", 1, False, timeout=5.0)
    assert len(BlockingClient.created) == 2 and adapter.is_connected()


@pytest.mark.parametrize("hidden_frames, pulls", [(0, 2), (5, 6)])
def test_the_warm_up_pulls_until_a_frame_carries_markers(adapter, hidden_frames, pulls):
    """The server applies the enabled data types some frames late on a loaded machine: frames
    before that would reach the stream with every marker 'occluded'."""
    BlockingClient.release.set()

    class LateMarkers(BlockingClient):
        def GetMarkerGlobalTranslation(self, subject, name):
            return (1.0, 2.0, 3.0), self.calls.count("GetFrame") <= hidden_frames

    adapter._new_client = LateMarkers
    adapter.connect("10.0.0.7", "ServerPush", 1, False, timeout=5.0)
    client = BlockingClient.created[-1]
    assert client.calls.count("GetFrame") == pulls and client.calls[-1] == "SetStreamMode"


def test_a_server_without_frames_yet_still_connects(adapter):
    """Connected but not streaming (Nexus not live): the warm-up gives up after its bound
    and the connection stands; the node then reads 'not streaming' frame by frame."""
    BlockingClient.release.set()

    class NoFrames(BlockingClient):
        def GetFrame(self):
            self.calls.append("GetFrame")
            return False

        def GetSubjectNames(self):
            raise DataStreamException("NoFrame")

    adapter._new_client = NoFrames
    adapter.connect("10.0.0.7", "ServerPush", 1, True, timeout=5.0)
    client = BlockingClient.created[-1]
    assert adapter.is_connected() and client.calls[-1] == "SetStreamMode"
    assert client.calls.count("GetFrame") >= 2
