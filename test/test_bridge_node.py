"""The bridge node in its own process: the real biosiglive 2.0.3 client gets exactly what the
topics carried, biosiglive.load reads the recordings, and a kill -9 loses at most one save
interval."""
import signal
import threading
import time

import numpy as np
import pytest
from biosiglive import Client, Message, load
from biosiglive.streaming.server import Connection
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from biosig_ros.msg import MarkerResiduals, MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg, seconds_to_time
from biosig_ros.signals import MarkerFrame, SignalChunk
from biosig_ros.srv import StartRecording
from ros_harness import NodeProcess, RosProbe, wait_until

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

T0 = 1_700_000_000.0
RAW_RATE, RAW_CHUNK, RAW_CHANNELS = 1000.0, 10, 3
PROC_RATE, PROC_CHUNK, PROC_CHANNELS = 200.0, 4, 2
MARKERS = ["A", "B", "C", "D"]
JOINTS = ["q0", "q1", "q2"]
IK_SKIP_AT, IK_SKIPPED = 30, 7   # IK frame numbers jump by 7 at the 30th joint state


class Published:
    """What the probe published, in biosiglive's layout (samples last) and units."""

    def __init__(self):
        self.raw, self.raw_times = [], []
        self.proc = []
        self.markers_m, self.markers_mm, self.marker_frames = [], [], []
        self.q, self.q_frames = [], []

    def cat(self, name):
        return np.concatenate(getattr(self, name), axis=-1)


class Publisher:
    def __init__(self, probe: RosProbe):
        self.raw = probe.publisher(SignalChunkMsg, "/emg/raw")
        self.proc = probe.publisher(SignalChunkMsg, "/emg/envelope")
        self.markers = probe.publisher(MarkerSet, "/markers")
        self.joints = probe.publisher(JointState, "/ik/joint_states")
        self.residuals = probe.publisher(MarkerResiduals, "/ik/marker_residuals")
        self.sent = Published()
        self.raw_index = self.proc_index = self.frame = 0
        for publisher in (self.raw, self.proc, self.markers, self.joints, self.residuals):
            assert probe.wait_for_subscribers(publisher)
        time.sleep(0.3)  # let matching complete on the bridge's side too

    def step(self, rng):
        """One loop of every source: a raw chunk, a processed chunk, a frame, a joint state."""
        raw = rng.normal(size=(RAW_CHUNK, RAW_CHANNELS)) * 1e-3
        stamp = T0 + self.raw_index / RAW_RATE
        self.raw.publish(chunk_to_msg(SignalChunk(raw, self.raw_index, stamp, RAW_RATE,
                                                  ["e0", "e1", "e2"], "V")))
        self.sent.raw.append(raw.T)
        self.sent.raw_times.append(stamp + np.arange(RAW_CHUNK) / RAW_RATE)
        self.raw_index += RAW_CHUNK

        proc = rng.uniform(size=(PROC_CHUNK, PROC_CHANNELS))
        self.proc.publish(chunk_to_msg(SignalChunk(proc, self.proc_index, T0 + self.proc_index / PROC_RATE,
                                                   PROC_RATE, ["p0", "p1"], "")))
        self.sent.proc.append(proc.T)
        self.proc_index += PROC_CHUNK

        positions = rng.normal(size=(len(MARKERS), 3))
        if self.frame % 3 == 0:
            positions[1] = np.nan  # occluded
        frame = MarkerFrame(positions, MARKERS, self.frame, T0 + self.frame / 100.0, 100.0, "s")
        self.markers.publish(frame_to_msg(frame))
        mm = frame.positions * 1000.0
        self.sent.markers_mm.append(np.where(np.isnan(mm), 0.0, mm).T[:, :, None])
        self.sent.marker_frames.append(self.frame)

        q = rng.normal(size=len(JOINTS))
        state = JointState(name=JOINTS, position=q.tolist())
        state.header.stamp = seconds_to_time(T0 + self.frame / 100.0)
        self.joints.publish(state)
        # Like ik_node: the residuals of the same frame, same stamp, after the joint state.
        number = self.frame + (IK_SKIPPED if self.frame >= IK_SKIP_AT else 0)
        residuals = MarkerResiduals(frame_number=number, marker_names=MARKERS)
        residuals.header.stamp = state.header.stamp
        self.residuals.publish(residuals)
        self.sent.q.append(q[:, None])
        self.sent.q_frames.append(number)
        self.frame += 1


def bridge_port(node: NodeProcess) -> int:
    assert node.wait_for_output("serving biosiglive clients on"), node.output()
    return int(node.output().split("serving biosiglive clients on 127.0.0.1:")[1].split()[0])


def get(port, **message):
    return Client("127.0.0.1", port, client_type="TCP").get_data(Message(**message))


def wait_until_served(port, sent: Published, timeout=20.0):
    """Poll with the legacy client until the newest published samples are served."""
    deadline = time.monotonic() + timeout
    reply = None
    while time.monotonic() < deadline:
        reply = get(port, command=["raw_device_data", "proc_device_data", "kinematics_data",
                                   "marker_set_data"], nb_frame_to_get=1)
        if "error" not in reply and all((
                np.array_equal(reply["raw_device_data"], sent.raw[-1][:, -1:]),
                np.array_equal(reply["proc_device_data"], sent.proc[-1][:, -1:]),
                np.array_equal(reply["kinematics_data"], sent.q[-1]),
                np.array_equal(reply["marker_set_data"], sent.markers_mm[-1]))):
            return
        time.sleep(0.05)
    raise AssertionError(f"bridge never served the newest data; last reply: {reply}")


@pytest.fixture
def probe():
    with RosProbe("bridge_test_probe") as probe:
        yield probe


def publish_loops(publisher, count, seed, pause=0.004):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        publisher.step(rng)
        time.sleep(pause)


def test_biosiglive_client_gets_exactly_what_the_topics_carried_and_load_reads_the_recording(
        probe, tmp_path):
    params = {"port": 0, "record_on_start": True, "record_directory": str(tmp_path),
              "record_path": "first.bio", "save_frequency": 20.0, "marker_set_buffer_size": 20,
              "max_file_bytes": 0}
    with NodeProcess("biosig_ros.nodes.bridge_node", "bridge", params) as node:
        port = bridge_port(node)
        assert node.wait_for_output(f"recording to {tmp_path / 'first.bio'}")
        publisher = Publisher(probe)
        publish_loops(publisher, 60, seed=1)
        sent = publisher.sent
        wait_until_served(port, sent)

        raw, proc, q = sent.raw[-1], sent.cat("proc"), sent.cat("q")
        # Newest raw chunk; one second of processed EMG (200 samples at 200 Hz); 20 q frames;
        # newest marker frame in millimetres with the occluded marker at 0.
        expected = {"proc_device_data": [proc[:, -200:]], "raw_device_data": [raw],
                    "kinematics_data": [q[:, -20:]], "marker_set_data": [sent.markers_mm[-1]]}
        full = get(port, command=["raw_device_data", "proc_device_data", "kinematics_data",
                                  "marker_set_data"], nb_frame_to_get=None)
        for key in expected:
            np.testing.assert_array_equal(full[key], expected[key][0], err_msg=key)
        assert full["proc_device_data"].shape == (PROC_CHANNELS, 200)
        assert full["marker_set_data"].shape == (3, len(MARKERS), 1)
        assert full["kinematics_data"].shape == (len(JOINTS), 20)

        # Message()'s defaults (["all"], one frame) and explicit options, against biosiglive's
        # own selection code applied to what was published.
        for message in (dict(), dict(command="all", nb_frame_to_get=5),
                        dict(command=["proc_device_data"], nb_frame_to_get=7,
                             down_sampling={"proc_device_data": 3}),
                        dict(command=["kinematics_data", "raw_device_data"], nb_frame_to_get=4,
                             down_sampling={"kinematics_data": 2, "raw_device_data": 5}),
                        dict(command=["marker_set_data"], nb_frame_to_get=0)):
            m = Message(**message)
            command = "all" if m.command == ["all"] else m.command
            reference = Connection._prepare_data(command, expected, m.down_sampling, m.nb_frames_to_get)
            reply = get(port, **message)
            assert list(reply) == list(reference), message
            for key in reference:
                np.testing.assert_array_equal(reply[key], reference[key], err_msg=f"{message} {key}")

        # Recording: stop, then biosiglive.load reads every published sample, gapless.
        response = probe.call(Trigger, "/bridge/stop_recording", Trigger.Request())
        assert response.success, response.message
        assert probe.call(Trigger, "/bridge/stop_recording", Trigger.Request()).success is False
        data = load(str(tmp_path / "first.bio"))
        check_recording(data, sent)

        # A second recording through the service, then a refused double start.
        response = probe.call(StartRecording, "/bridge/start_recording",
                              StartRecording.Request(path="second.bio"))
        assert response.success and response.path == str(tmp_path / "second.bio")
        again = probe.call(StartRecording, "/bridge/start_recording", StartRecording.Request())
        assert not again.success and "already recording" in again.message
        before = len(sent.raw)
        time.sleep(0.2)
        publish_loops(publisher, 15, seed=2)
        wait_until_served(port, sent)
        assert probe.call(Trigger, "/bridge/stop_recording", Trigger.Request()).success
        second = load(str(tmp_path / "second.bio"))
        np.testing.assert_array_equal(_per_source(second, "raw_device_data"),
                                      np.concatenate(sent.raw[before:], axis=-1))
    assert node.process.returncode == 0, node.output()


def _per_source(data, key, source=0):
    return np.concatenate([record[source] for record in data[key]], axis=-1)


def check_recording(data, sent: Published):
    np.testing.assert_array_equal(_per_source(data, "raw_device_data"), sent.cat("raw"))
    np.testing.assert_array_equal(_per_source(data, "raw_device_data_time"),
                                  np.concatenate(sent.raw_times))
    np.testing.assert_array_equal(_per_source(data, "raw_device_data_index"),
                                  np.arange(sent.cat("raw").shape[1]))
    np.testing.assert_array_equal(_per_source(data, "proc_device_data"), sent.cat("proc"))
    np.testing.assert_array_equal(_per_source(data, "marker_set_data"), sent.cat("markers_mm"))
    np.testing.assert_array_equal(_per_source(data, "marker_set_data_index"), sent.marker_frames)
    np.testing.assert_array_equal(_per_source(data, "kinematics_data"), sent.cat("q"))
    # The IK frame numbers, paired by stamp: the skipped IK frames are a gap in the file.
    np.testing.assert_array_equal(_per_source(data, "kinematics_data_index"), sent.q_frames)
    records = len(data["raw_device_data"])
    for key in ("absolute_time_frame", "interface_latency", "process_time", "initial_time",
                "time_to_get_data", "saving_time", "record_time", "sources"):
        assert len(data[key]) == records, key
    assert set(data["absolute_time_frame"][0]) == {
        "day", "hour", "hour_s", "minute", "minute_s", "second", "millisecond", "millisecond_s"}
    sources = data["sources"][-1]
    assert sources["marker_set_data"][0]["names"] == MARKERS
    assert sources["raw_device_data"][0] == {"topic": "/emg/raw", "names": ["e0", "e1", "e2"],
                                             "rate": RAW_RATE, "unit": "V"}


def test_recording_survives_kill_9(probe, tmp_path):
    """Publish continuously, learn from a client which chunk the bridge holds, let one save
    interval pass, kill -9: biosiglive.load reads the file and it holds that chunk."""
    save_frequency = 10.0
    slack = 0.3  # scheduling on a loaded machine: the writer thread may wake a little late
    params = {"port": 0, "record_on_start": True, "record_directory": str(tmp_path),
              "record_path": "crash.bio", "save_frequency": save_frequency, "max_file_bytes": 0}
    node = NodeProcess("biosig_ros.nodes.bridge_node", "bridge", params)
    try:
        port = bridge_port(node)
        publisher = Publisher(probe)
        stop = threading.Event()

        def run():
            rng = np.random.default_rng(5)
            while not stop.is_set():
                publisher.step(rng)
                time.sleep(0.01)

        thread = threading.Thread(target=run)
        thread.start()
        # the bridge holds published chunks (it serves them): the recording has begun
        assert wait_until(lambda: "error" not in get(port, command=["raw_device_data"],
                                                      nb_frame_to_get=1)), node.output()
        newest = get(port, command=["raw_device_data"], nb_frame_to_get=None)["raw_device_data"]
        held = next(i for i in range(len(publisher.sent.raw) - 1, -1, -1)
                    if np.array_equal(publisher.sent.raw[i], newest))
        time.sleep(1.0 / save_frequency + slack)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        stop.set()
        thread.join()
    finally:
        node.stop()
    data = load(str(tmp_path / "crash.bio"))  # biosiglive's own loader: the file is whole
    recorded = _per_source(data, "raw_device_data")
    indices = _per_source(data, "raw_device_data_index")
    sent = publisher.sent.cat("raw")
    # Every recorded sample is the published sample of that index, in order (a best-effort
    # transport may drop a chunk when the machine is overloaded: the index says which).
    np.testing.assert_array_equal(recorded, sent[:, indices])
    assert np.all(np.diff(indices) > 0)
    assert indices[-1] // RAW_CHUNK >= held, (int(indices[-1]) // RAW_CHUNK, held)


BAD_CONFIGURATIONS = {
    "parameter 'save_frequency'": {"save_frequency": 0.0},
    "no absolute path, no '..'": {"record_path": "../up.bio"},
    "must end in .bio": {"record_path": "run.txt"},
    "parameter 'marker_scale' must be > 0": {"marker_scale": -1.0},
    "'raw_device_topics' contains an empty topic name": {"raw_device_topics": ["/emg/raw", " "]},
    "(parameters 'bind_address', 'port')": {"port": "BUSY"},
}


@pytest.fixture(scope="module")
def refused_starts():
    """A bridge started with each bad configuration, all at once (each stops at start-up,
    alone; "BUSY": the port of a socket listening meanwhile), by the text it must name."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        nodes = {}
        for index, (message, params) in enumerate(BAD_CONFIGURATIONS.items()):
            if params.get("port") == "BUSY":
                params = {"port": busy.getsockname()[1]}
            nodes[message] = NodeProcess("biosig_ros.nodes.bridge_node", f"bridge_{index}",
                                         params)
        try:
            for node in nodes.values():
                node.process.wait(timeout=60)
        finally:
            for node in nodes.values():
                node.stop()
        yield nodes


@pytest.mark.parametrize("message", list(BAD_CONFIGURATIONS))
def test_bad_configuration_exits_with_status_2_and_names_it(refused_starts, message):
    node = refused_starts[message]
    assert node.process.returncode == 2, node.output()
    assert message in node.output(), node.output()
    assert "Traceback" not in node.output()


def _diagnostics_of(probe, name="bridge"):
    received = probe.subscribe(DiagnosticArray, "/diagnostics")

    def latest():
        statuses = [s for _, array in list(received) for s in array.status if s.name == name]
        return statuses[-1] if statuses else None
    return latest


def _level(status) -> int:
    level = status.level
    return level[0] if isinstance(level, bytes) else int(level)


def test_paths_refused_over_the_service_and_the_disk_guard_stops_only_the_recording(
        probe, tmp_path):
    """Absolute paths, '..' and existing files are refused with the reason; raising
    min_free_bytes above the real free space at run time stops the recording with one ERROR
    (log and /diagnostics) while the bridge keeps serving new data; gaps in an input stream
    show as WARN on /diagnostics."""
    (tmp_path / "taken.bio").write_bytes(b"x")
    params = {"port": 0, "record_directory": str(tmp_path), "save_frequency": 20.0,
              "max_file_bytes": 1048576}
    latest = _diagnostics_of(probe)
    with NodeProcess("biosig_ros.nodes.bridge_node", "bridge", params) as node:
        port = bridge_port(node)
        for path, reason in (("/tmp/evil.bio", "absolute path"), ("../evil.bio", "contains '..'"),
                             ("taken.bio", "exists: a recording never appends")):
            response = probe.call(StartRecording, "/bridge/start_recording",
                                  StartRecording.Request(path=path))
            assert not response.success and reason in response.message, response.message
        response = probe.call(StartRecording, "/bridge/start_recording",
                              StartRecording.Request(path="guarded"))
        assert response.success and response.path == str(tmp_path / "guarded_part001.bio")
        publisher = Publisher(probe)
        publish_loops(publisher, 20, seed=3)
        wait_until_served(port, publisher.sent)

        # A gap in the raw EMG indices: WARN naming the stream, OK again after the window.
        publisher.raw_index += 500
        publish_loops(publisher, 5, seed=5)
        assert probe.wait_until(lambda: "emg/raw" in (latest().message if latest() else "")), \
            latest()
        assert _level(latest()) == 1, latest()
        assert int(latest().message.split(" lost")[0]) >= 500, latest().message
        # No new gap (nothing published meanwhile): OK again once the 10 s window has passed.
        assert probe.wait_until(lambda: _level(latest()) == 0, timeout=40), latest()

        request = SetParameters.Request(parameters=[ParameterMsg(
            name="min_free_bytes", value=ParameterValue(
                type=ParameterType.PARAMETER_INTEGER, integer_value=2 ** 62))])
        result = probe.call(SetParameters, "/bridge/set_parameters", request)
        assert result.results[0].successful, result.results[0].reason
        read_only = probe.call(SetParameters, "/bridge/set_parameters", SetParameters.Request(
            parameters=[ParameterMsg(name="record_directory", value=ParameterValue(
                type=ParameterType.PARAMETER_STRING, string_value="/"))]))
        assert not read_only.results[0].successful
        assert probe.wait_until(lambda: _level(latest()) == 2), latest()
        assert "below min_free_bytes" in latest().message
        size = (tmp_path / "guarded_part001.bio").stat().st_size
        publish_loops(publisher, 20, seed=4)
        wait_until_served(port, publisher.sent)          # serving goes on
        assert (tmp_path / "guarded_part001.bio").stat().st_size == size
        assert node.output().count("below min_free_bytes") == 1, node.output()
        recorded = load(str(tmp_path / "guarded_part001.bio"))
        assert len(recorded["raw_device_data"]) >= 1
    assert node.process.returncode == 0, node.output()
