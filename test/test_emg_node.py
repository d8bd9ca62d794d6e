"""emg_processing_node across processes: the node runs in its own process (NodeProcess), a
RosProbe publishes /emg/raw chunks from data/abd.bio, reads /emg/envelope and /diagnostics,
calls the MVC calibration service and changes parameters."""
from __future__ import annotations

import concurrent.futures
import time

import numpy as np
import pytest
import yaml
from biosiglive import RealTimeProcessing
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_harness import NodeProcess, RosProbe

from biosig_ros.io.bio_file import load_bio
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings, EnvelopeStream
from biosig_ros.processing.mvc import MvcCalibration, compute_mvc
from biosig_ros.ros.conversions import advance_stamp, chunk_to_msg, msg_to_chunk
from biosig_ros.signals import SignalChunk
from biosig_ros.srv import CalibrateMvc

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

MODULE = "biosig_ros.nodes.emg_processing_node"
NAME = "emg_processing"
RATE = 2000.0
NAMES = [f"muscle_{i}" for i in range(10)]
START = 1_750_000_000.0


@pytest.fixture(scope="module")
def emg() -> np.ndarray:
    return load_bio(resolve_data_path("data/abd.bio"))["emg"]


def start_in(namespace: str, params: dict | None = None) -> NodeProcess:
    """The node in its own namespace ("/x": topics /x/emg/raw..., status x/emg_processing)."""
    return NodeProcess(MODULE, NAME, params, namespace=namespace)


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """The nodes of the tests below, each in its own namespace, started together (their
    start-ups and DDS discovery overlap; each then idles until its test feeds it); a test
    stops its node when done."""
    mvc_path = tmp_path_factory.mktemp("mvc") / "mvc" / "subject.yaml"
    nodes = {
        "/streaming": start_in("/streaming"),  # channels learned
        "/biosiglive": start_in("/biosiglive", {"mode": "biosiglive", "processing_window": 400,
                                                "centring": True}),
        "/calibrated": start_in("/calibrated", {"mvc_file": str(mvc_path),
                                                "mvc_window_s": 0.25}),
        "/losses": start_in("/losses", {"loss_window_s": 3.0}),
        # mvc of 3 values: valid alone, checked against the stream
        "/three": start_in("/three", {"mvc": [1e-4, 2e-4, 3e-4]}),
        "/rate": start_in("/rate"),
    }
    nodes["mvc_path"] = mvc_path
    yield nodes
    for node in nodes.values():
        if isinstance(node, NodeProcess):
            node.stop()


def chunk(emg: np.ndarray, k: int, size: int = 20) -> SignalChunk:
    """Chunk number k of the recording (samples x channels, V)."""
    a = k * size
    return SignalChunk(emg[:, a:a + size].T.copy(), a, START + a / RATE, RATE, NAMES, "V")


class Rig:
    """A probe publishing /emg/raw and collecting /emg/envelope and /diagnostics (the node's
    namespace before these names, e.g. "/three")."""

    def __init__(self, probe: RosProbe, node: NodeProcess, namespace: str = ""):
        self.probe = probe
        self.node = node
        self.name = f"{namespace.strip('/')}/{NAME}" if namespace else NAME  # its status
        self.envelope = probe.subscribe(SignalChunkMsg, f"{namespace}/emg/envelope")
        self.diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        self.raw = probe.publisher(SignalChunkMsg, f"{namespace}/emg/raw")
        assert probe.wait_for_subscribers(self.raw), node.output()
        assert probe.wait_until(
            lambda: probe.node.count_publishers(f"{namespace}/emg/envelope") >= 1)
        # The node's first /diagnostics message (1 Hz) arriving shows its writers have matched
        # this probe's readers; then a margin for the envelope link, matched at the same time.
        assert probe.wait_until(lambda: self.status_values(), 20), node.output()
        time.sleep(0.5)

    def publish(self, chunks, outputs: bool = True, burst: int = 8) -> None:
        """Publish chunks. When each yields an envelope chunk (outputs), stay at most `burst`
        chunks ahead of the node's outputs, so that a node slowed down by a busy machine never
        overflows its best-effort queue; otherwise pace at the real rate (10 ms per chunk)."""
        expected = len(self.envelope)
        for c in chunks:
            if outputs:
                assert self.probe.wait_until(lambda: len(self.envelope) > expected - burst, 20), \
                    self.node.output()
                expected += 1
            self.raw.publish(chunk_to_msg(c))
            time.sleep(0.002 if outputs else 0.01)

    def outputs(self, count: int, timeout: float = 20.0) -> list[SignalChunk]:
        assert self.probe.wait_until(lambda: len(self.envelope) >= count, timeout), (
            len(self.envelope), self.node.output())
        time.sleep(0.1)
        assert len(self.envelope) == count, self.node.output()
        return [msg_to_chunk(m) for _, m in self.envelope]

    def status(self, condition, timeout: float = 10.0) -> dict:
        """The node's latest diagnostic values once condition(values) holds."""
        assert self.probe.wait_until(lambda: condition(self.status_values()), timeout), (
            self.status_values())
        return self.status_values()

    def status_values(self) -> dict:
        """The node's latest diagnostic values and message ({} before the first)."""
        for _, array in reversed(list(self.diagnostics)):
            for status in array.status:
                if status.name == self.name:
                    return {kv.key: kv.value for kv in status.values} | {
                        "message": status.message}
        return {}

    def set_parameter(self, name: str, value):
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.probe.call(SetParameters, f"/{self.name}/set_parameters",
                               request).results[0]


def test_streaming_node_end_to_end(emg, started):
    settings = EmgPipelineSettings()
    local = EnvelopeStream(EmgPipeline(settings), RATE)
    node = started["/streaming"]
    with node, RosProbe() as probe:
        rig = Rig(probe, node, "/streaming")
        # Chunk 12 never arrives (a gap of 20 samples); chunk 20 arrives twice (a late repeat).
        rig.publish(chunk(emg, k) for k in range(22) if k != 12)
        rig.publish([chunk(emg, 20)], outputs=False)
        rig.publish(chunk(emg, k) for k in range(22, 40))
        accepted = [k for k in range(40) if k != 12]
        outputs = rig.outputs(len(accepted))
        for k, out in zip(accepted, outputs):
            expected, _ = local.step(chunk(emg, k))
            assert out.first_sample_index == 20 * k and out.sample_count == 20
            assert out.stamp == pytest.approx(START + k * 20 / RATE, abs=1e-9)
            assert out.channel_names == NAMES and out.unit == "V" and out.sample_rate == RATE
            assert np.array_equal(out.data, expected.data)
        values = rig.status(lambda v: v.get("chunks") == "39")
        assert (values["gaps"], values["missing_samples"], values["late_chunks"],
                values["refused_chunks"]) == ("1", "20", "1", "0")
        assert float(values["processing_p50_us"]) > 0

        # Runtime: the MVC may change (normalised output), the filters may not.
        mvc = [2e-4] * 5 + [4e-4] * 5
        assert rig.set_parameter("mvc", mvc).successful
        refused = rig.set_parameter("bandpass_low_hz", 20.0)
        assert not refused.successful and "read-only" in refused.reason
        bad = rig.set_parameter("mvc", [1e-4] * 9)
        assert not bad.successful and "9 values for 10 channels" in bad.reason
        rig.publish(chunk(emg, k) for k in range(40, 45))
        outputs = rig.outputs(len(accepted) + 5)[-5:]
        for k, out in zip(range(40, 45), outputs):
            expected, _ = local.step(chunk(emg, k))
            assert out.unit == ""
            assert np.array_equal(out.data, expected.data / np.array(mvc))

        # A chunk with NaN or the wrong channel count is refused and reported, not processed.
        broken = chunk(emg, 45)
        broken.data[0, 0] = np.nan
        rig.publish([broken], outputs=False)
        values = rig.status(lambda v: v.get("refused_chunks") == "1")
        assert "non-finite" in values["message"]
        assert "input layout: 10 channels [muscle_0" in node.output()
    assert node.process.returncode == 0, node.output()


def test_biosiglive_mode_node_matches_biosiglive(emg, started):
    reference = RealTimeProcessing(2000, 400)  # the node's mode, processing_window, centring
    expected = [reference.process_emg(emg[:, 20 * k:20 * k + 20])[:, -1] for k in range(60)]
    node = started["/biosiglive"]
    with node, RosProbe() as probe:
        rig = Rig(probe, node, "/biosiglive")
        rig.publish((chunk(emg, k) for k in range(20)), outputs=False)
        rig.publish(chunk(emg, k) for k in range(20, 60))
        outputs = rig.outputs(40)  # nothing while biosiglive's first 400 samples fill
    for k, out in zip(range(20, 60), outputs):
        assert out.sample_count == 1 and out.sample_rate == 100.0
        assert out.first_sample_index == (20 * k + 19) // 20
        assert out.stamp == pytest.approx(START + (20 * k + 19) / RATE, abs=1e-6)
        assert np.array_equal(out.data[0], expected[k])


def test_mvc_calibration_service_end_to_end(emg, started):
    path = started["mvc_path"]  # the node's mvc_file (mvc_window_s 0.25)
    local = EnvelopeStream(EmgPipeline(EmgPipelineSettings()), RATE)
    node = started["/calibrated"]
    with node, RosProbe() as probe:
        rig = Rig(probe, node, "/calibrated")
        assert "does not exist yet" in node.output()
        invalid = probe.call(CalibrateMvc, f"/{rig.name}/calibrate_mvc",
                             CalibrateMvc.Request(duration=0.0))
        assert not invalid.success and "duration" in invalid.message
        rig.publish(chunk(emg, k) for k in range(40))
        rig.outputs(40)
        before = [local.step(chunk(emg, k)) for k in range(40)]
        assert all(out.unit == "V" for out, _ in before)

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(probe.call, CalibrateMvc, f"/{rig.name}/calibrate_mvc",
                                 CalibrateMvc.Request(duration=1.0), 30.0)
            assert node.wait_for_output("MVC calibration: recording"), node.output()
            rig.publish(chunk(emg, k) for k in range(40, 140))  # exactly 1 s of input
            response = future.result(timeout=30)
        recorded = np.concatenate([local.step(chunk(emg, k))[1] for k in range(40, 140)])
        expected = compute_mvc(recorded, 500, "biosiglive")
        assert response.success, response.message
        assert np.array_equal(response.mvc, expected)
        assert list(response.channel_names) == NAMES and str(path) in response.message
        saved = MvcCalibration.load(path)
        assert saved.mvc == list(response.mvc) and saved.channel_names == NAMES
        assert (saved.window_samples, saved.envelope_rate, saved.method) == (500, 2000.0,
                                                                             "biosiglive")
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["mvc"] == list(response.mvc)

        # Applied at once: the next envelope is a fraction of the MVC.
        local.set_mvc(expected)
        rig.publish(chunk(emg, k) for k in range(140, 145))
        for k, out in zip(range(140, 145), rig.outputs(145)[-5:]):
            assert out.unit == ""
            assert np.array_equal(out.data, local.step(chunk(emg, k))[0].data)

    # A new node loads the saved MVC at start.
    fresh = EnvelopeStream(EmgPipeline(EmgPipelineSettings()), RATE, expected)
    with NodeProcess(MODULE, NAME, {"mvc_file": str(path)}) as node, RosProbe() as probe:
        rig = Rig(probe, node)
        assert f"MVC: file {path}" in node.output()
        rig.publish(chunk(emg, k) for k in range(10))
        for k, out in zip(range(10), rig.outputs(10)):
            assert out.unit == ""
            assert np.array_equal(out.data, fresh.step(chunk(emg, k))[0].data)
        # Other electrodes than at calibration: still normalised by column, but reported.
        renamed = chunk(emg, 10)
        renamed.channel_names = [f"other_{i}" for i in range(10)]
        rig.publish([renamed], outputs=False)
        values = rig.status(lambda v: "other_0" in v.get("mvc_channels", ""))
        assert values["mvc_channels"].startswith("MVC calibrated on channels ['muscle_0'")


def test_invalid_configuration_stops_the_node_with_a_clear_message(tmp_path):
    three = tmp_path / "three.yaml"
    three.write_text("mvc: [1.0e-4, 2.0e-4, 3.0e-4]\n")
    cases = [({"bandpass_high_hz": 1500.0}, "'bandpass_high_hz' = 1500.0 Hz must be above 0 and "
              "below the Nyquist frequency"),
             ({"mvc": [1e-4] * 4, "channel_count": 10}, "'mvc' has 4 values for 10 channels"),
             ({"mvc": [1e-4] * 9 + [0.0]}, "must be finite and above zero"),
             ({"mode": "biosiglive", "processing_window": 100}, "larger than the buffer"),
             ({"mvc_file": str(three), "channel_count": 10},
              "has 3 channels, parameter 'channel_count' is 10"),
             ({"envelope": "rms", "mode": "biosiglive"}, "cannot be 'rms' in mode 'biosiglive'"),
             ({"publish_rate": 300.0}, "'publish_rate' (300 Hz) must divide")]
    nodes = [NodeProcess(MODULE, NAME, params) for params, _ in cases]
    for node, (_, message) in zip(nodes, cases):
        assert node.process.wait(timeout=300) == 2, node.output()  # 7 starts on a busy machine
        assert "configuration error" in node.output() and message in node.output(), node.output()


def test_losses_warn_then_clear_and_an_mvc_of_another_count_is_not_applied(emg, started):
    """Chunks skipped by the publisher: WARN naming the loss, OK once loss_window_s passed
    without loss. An MVC for 3 channels on a 10-channel stream: ERROR, volts published."""
    node, three_node = started["/losses"], started["/three"]  # loss_window_s 3; mvc of 3
    with node, three_node, RosProbe() as probe:
        rig = Rig(probe, node, "/losses")
        rig.publish(chunk(emg, k) for k in range(100))
        assert rig.status(lambda v: v.get("chunks") == "100")["message"] == "processing"
        rig.publish(chunk(emg, k) for k in range(100, 200) if not 120 <= k < 125)
        values = rig.status(lambda v: v.get("missing_samples") == "100")
        assert values["message"].startswith("100 lost in the last 3 s (missing samples)"), values
        # Clean input for longer than the window: OK again.
        k = 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for j in range(k, k + 20):  # indices go on, the recording loops
                looped = chunk(emg, j % 600)
                looped.first_sample_index = 20 * j
                rig.publish([looped])
            k += 20
            time.sleep(0.2)
            values = rig.status(lambda v: True)
            if values["message"] == "processing":
                break
        assert values["message"] == "processing" and values["lost_in_window"] == "0", values
        # A runtime MVC of another count is refused; the layout decides.
        refused = rig.set_parameter("mvc", [1e-4] * 3)
        assert not refused.successful and "3 values for 10 channels" in refused.reason
        node.stop()

        rig = Rig(probe, three_node, "/three")
        rig.publish(chunk(emg, k) for k in range(10))
        assert all(out.unit == "V" for out in rig.outputs(10))
        values = rig.status(lambda v: "not applied" in v.get("message", ""))
        assert values["message"] == ("MVC (parameter mvc) has 3 channels, the input has 10: not "
                                     "applied, publishing V") and values["unit"] == "V"


def test_publish_rate_at_run_time_keeps_indices_monotonic_and_a_new_layout_is_learned(
        emg, started):
    node = started["/rate"]
    with node, RosProbe() as probe:
        rig = Rig(probe, node, "/rate")
        rig.publish(chunk(emg, k) for k in range(30))
        rig.outputs(30)  # every chunk processed before the change: it applies from chunk 30
        assert rig.set_parameter("publish_rate", 100.0).successful
        rig.publish(chunk(emg, k) for k in range(30, 60))
        rig.outputs(60)
        assert rig.set_parameter("publish_rate", 0.0).successful
        rig.publish(chunk(emg, k) for k in range(60, 90))
        outputs = rig.outputs(90)
        indices = [o.first_sample_index + j for o in outputs for j in range(o.sample_count)]
        assert indices == list(range(len(indices))), indices[560:640]
        assert [o.sample_rate for o in outputs[29:32]] == [RATE, 100.0, 100.0]
        # Six electrodes from now on: the filters start again for them, reported.
        six = [f"arm_{i}" for i in range(6)]
        for k in range(90, 100):
            c = chunk(emg, k)
            c.data, c.channel_names = np.ascontiguousarray(c.data[:, :6]), six
            rig.publish([c])
        outputs = rig.outputs(100)[-10:]
        assert all(o.channel_names == six and o.data.shape == (20, 6) for o in outputs)
        assert outputs[0].first_sample_index == indices[-1] + 1
        values = rig.status(lambda v: v.get("layout_changes") == "1")
        assert values["channels"] == "6"
        assert node.wait_for_output("input layout changed from 10 channels [muscle_0"), \
            node.output()
        assert "filters re-initialised for the new layout" in node.output()


def test_advance_stamp_is_exact_and_carries_into_seconds():
    from builtin_interfaces.msg import Time

    stamp = advance_stamp(Time(sec=1_795_000_000, nanosec=999_990_000), 9_500_000)
    assert (stamp.sec, stamp.nanosec) == (1_795_000_001, 9_490_000)
    assert (advance_stamp(stamp, 0).sec, stamp.nanosec) == (1_795_000_001, 9_490_000)
