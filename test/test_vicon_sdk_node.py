"""vicon_markers_node through Vicon's own DataStream SDK library (backend sdk, the build of
tools/bootstrap.sh) against the wire-protocol simulator in its own process (vicon_wire_sim).

Skipped only when the SDK build is absent (CI builds it with bootstrap); the missing-build
case itself always runs."""
import socket
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray

from biosig_ros.devices import vicon_sdk_library
from biosig_ros.io.bio_file import load_bio
from biosig_ros.msg import MarkerSet
from biosig_ros.paths import resolve_data_path
from biosig_ros.ros.conversions import msg_to_frame
from biosig_ros.ros.qos import output_qos
from ros_harness import NodeProcess, RosProbe, free_port, shipped_parameters

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ABD = load_bio(resolve_data_path("data/abd.bio"))
FRAMES = ABD["markers"].shape[2]
NODE = "biosig_ros.nodes.vicon_markers_node"
SIM = "biosig_ros.devices.vicon_wire.cli"
built = pytest.mark.skipif(
    not vicon_sdk_library.library_path().is_file(),
    reason=f"Vicon DataStream SDK not built ({vicon_sdk_library.library_path()} missing): "
           "run tools/bootstrap.sh")


def start_simulator(port, epoch):
    sim = NodeProcess(SIM, "vicon_wire_sim", args=["data/abd.bio", "--port", str(port),
                                                   "--epoch", repr(epoch), "--no-analog"],
                      ros=False)
    assert sim.wait_for_output("listening on", 30), sim.output()
    return sim


def node_params(port, **overrides):
    return {**dict(backend="sdk", host=f"127.0.0.1:{port}", retry_interval=0.2,
                   frame_timeout=1.0, connect_timeout=2.0, buffer_size=1000, frame_id="vicon"),
            **overrides}


def vicon_frames(markers):
    return [msg_to_frame(m) for _, m in list(markers) if m.header.frame_id == "vicon"]


def dropped(diagnostics):
    values = [dict((v.key, v.value) for v in s.values) for _, m in list(diagnostics)
              for s in m.status if s.name == "vicon_markers"]
    return [int(v["dropped_frames"]) for v in values if v.get("dropped_frames", "-") != "-"]


@built
def test_markers_through_vicon_library_equal_the_recording_and_survive_a_restart():
    port, epoch = free_port(), time.time()
    sim = start_simulator(port, epoch)
    try:
        with RosProbe() as probe, NodeProcess(NODE, "vicon_markers", node_params(port)) as node:
            # reliable: a loaded machine must not lose messages between the node and the test
            markers = probe.subscribe(MarkerSet, "/markers", output_qos(1000))
            diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
            assert probe.wait_until(lambda: len(vicon_frames(markers)) >= 100, 60), \
                node.output()
            assert "built by tools/bootstrap.sh" in node.output()
            sim.stop(sig=9)                               # killed: no goodbye on the wire
            killed_at = time.time()
            assert probe.wait_until(lambda: "device lost" in node.output(), 30), node.output()
            time.sleep(1.0)
            restarted_at = time.time()
            sim = start_simulator(port, epoch)            # same epoch: the count runs on
            count = len(vicon_frames(markers))
            assert probe.wait_until(lambda: len(vicon_frames(markers)) >= count + 100, 60), \
                node.output()
            assert probe.wait_until(lambda: dropped(diagnostics) and
                                    dropped(diagnostics)[-1] > 0, 30), node.output()
            frames = vicon_frames(markers)
            assert node.alive()
    finally:
        sim.stop()
    names = [f"marker_{i}" for i in range(1, 17)]
    for frame in frames:
        assert frame.marker_names == names and frame.subject == "abd"
        assert not frame.occluded.any() and frame.frame_rate == 100.0, (
            frame.frame_number, frame.occluded, frame.frame_rate, numbers_seen(frames))
        row = (frame.frame_number - 1) % FRAMES
        expected = ABD["markers"][:, :, row].T.astype(np.float32).astype(float) / 1000.0
        assert np.array_equal(frame.positions, expected)
    numbers = [f.frame_number for f in frames]
    jumps = [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1]
    assert len(jumps) == 1 and all(b > a for a, b in zip(numbers, numbers[1:])), (
        jumps, killed_at - epoch, restarted_at - epoch, numbers[0])
    (before, after), = jumps
    # The jump spans the outage: the last frame before the kill, the first after the restart.
    assert before <= 1 + (killed_at - epoch) * 100 and after >= (restarted_at - epoch) * 100
    assert dropped(diagnostics)[-1] == after - before - 1


def numbers_seen(frames):
    return [(f.frame_number, int(f.occluded.sum())) for f in frames]


def silent_listener():
    """A port whose accept queue is full: the kernel drops further SYNs (a host that does not
    answer), so a connect blocks until its own timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    return listener, fillers


@built
@pytest.mark.parametrize("case", ["closed port", "silent host"])
def test_wrong_host_or_port_fails_configure_with_one_line_naming_it(case):
    listener, fillers = silent_listener() if case == "silent host" else (None, [])
    port = listener.getsockname()[1] if listener else free_port()
    try:
        node = NodeProcess(NODE, "vicon_markers", node_params(port, connect_timeout=0.5,
                                                             retry_interval=5.0))
        with node:
            assert node.wait_for_output("configure failed", 60), node.output()
            time.sleep(3.0)     # spinning (a signal while the node is built is another story)
            assert node.alive()
    finally:
        for sock in fillers + ([listener] if listener else []):
            sock.close()
    lines = [line for line in node.output().splitlines() if "configure failed" in line]
    expected = "ClientConnectionFailed" if case == "closed port" else "within 0.5 s"
    assert f"127.0.0.1:{port}" in lines[0] and expected in lines[0], node.output()
    assert "Traceback" not in node.output()


def test_a_missing_sdk_build_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setenv("BIOSIG_ROS_VICON_SDK", str(tmp_path))     # an empty build directory
    node = NodeProcess(NODE, "vicon_markers", dict(backend="sdk"))
    assert node.process.wait(timeout=60) == 2
    output = node.output()
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "configuration error" in lines[0] and "tools/bootstrap.sh" in lines[0]
    assert str(tmp_path) in lines[0]


def test_a_missing_build_with_sdk_fallback_warns_and_streams_the_stand_in(monkeypatch, tmp_path):
    """What the simulated_devices graph does on a machine where the SDK build failed."""
    monkeypatch.setenv("BIOSIG_ROS_VICON_SDK", str(tmp_path))
    params = {**shipped_parameters("vicon_markers.yaml"), **shipped_parameters("vicon_sim.yaml"),
              **shipped_parameters("vicon_wire_sim.yaml"), "frame_id": "vicon_fallback"}
    with RosProbe() as probe, NodeProcess(NODE, "vicon_markers", params) as node:
        markers = probe.subscribe(MarkerSet, "/markers")
        assert probe.wait_until(lambda: any(m.header.frame_id == "vicon_fallback"
                                            for _, m in list(markers)), 60), node.output()
    warnings = [line for line in node.output().splitlines() if "sdk_fallback" in line]
    assert len(warnings) == 1 and "tools/bootstrap.sh" in warnings[0], node.output()
