"""trigno_emg_node in its own process against trigno_sim (own process, or a thread here)."""
import signal
import socket
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from biosig_ros.devices.trigno_client import STANDARD_GRAVITY
from biosig_ros.devices.trigno_simulator import EmgSource, SimulatorSettings, TrignoSimulator
from biosig_ros.io.bio_file import load_bio
from biosig_ros.msg import SignalChunk
from biosig_ros.paths import resolve_data_path
from biosig_ros.ros.conversions import msg_to_chunk
from ros_harness import NodeProcess, RosProbe

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ABD = load_bio(resolve_data_path("data/abd.bio"))["emg"].T.astype(np.float32).astype(float)
NAMES = [f"EMG{i}" for i in range(1, 11)]
NODE = "biosig_ros.nodes.trigno_emg_node"
SIM = "biosig_ros.devices.trigno_simulator"


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_sim(ports):
    command, legacy_emg, legacy_aux, emg, aux = ports
    return NodeProcess(SIM, "trigno_sim", ros=False, args=[
        "--recording", str(resolve_data_path("data/abd.bio")), "--loop",
        "--command-port", str(command), "--legacy-emg-port", str(legacy_emg),
        "--legacy-aux-port", str(legacy_aux), "--emg-port", str(emg), "--aux-port", str(aux)])


def node_statuses(diagnostics):
    return [(t, s) for t, m in list(diagnostics) for s in m.status if s.name == "trigno_emg"]


def chunks(received):
    # frame_id "trigno" (a parameter; the default is "world") tells this node's messages from
    # those of any other graph that shares the test's ROS domain.
    return [msg_to_chunk(m) for _, m in list(received) if m.header.frame_id == "trigno"]


def test_values_stamps_and_recovery_after_the_simulator_is_killed():
    ports = free_ports(5)
    params = dict(host="127.0.0.1", command_port=ports[0], emg_port=ports[3],
                  sensor_slots=list(range(1, 11)), channel_names=NAMES, publish_rate=100.0,
                  retry_interval=0.3, frame_id="trigno")
    with RosProbe() as probe, NodeProcess(NODE, "trigno_emg", params) as node:
        emg = probe.subscribe(SignalChunk, "/emg/raw")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        # No TCU yet: the node runs, says so, and keeps trying.
        assert probe.wait_until(lambda: any(
            s.level == DiagnosticStatus.ERROR and "cannot connect" in s.message
            for _, s in node_statuses(diagnostics)), 30), node.output()
        assert probe.wait_until(lambda: probe.node.count_publishers("/emg/raw") >= 1)
        assert chunks(emg) == [] and node.alive()

        started = time.time()  # the TCU streams after this
        sim = start_sim(ports)
        try:
            assert probe.wait_until(lambda: len(emg) >= 150, 30), node.output() + sim.output()
            first_run = chunks(emg)
            # exact values, in order, from the first sample, in volts, with names and rate
            assert first_run[0].first_sample_index == 0
            assert [c.first_sample_index for c in first_run] == [20 * i for i in range(len(first_run))]
            assert all(c.channel_names == NAMES and c.unit == "V" and c.sample_count == 20
                       and c.sample_rate == pytest.approx(2000.0) for c in first_run)
            data = np.concatenate([c.data for c in first_run])
            assert np.array_equal(data, ABD[:len(data)])
            # stamps: acquisition time of the first sample, one time base, before arrival
            stamps = np.array([c.stamp for c in first_run])
            arrivals = np.array([t for t, m in list(emg) if m.header.frame_id == "trigno"]
                                [:len(first_run)])
            assert np.all(np.diff(stamps) > 0)
            assert np.all(stamps + 0.01 <= arrivals + 1e-3)   # last sample taken before arrival
            # after the TCU started (50 ms: its pacing may run that much ahead of this
            # clock); how long before arrival depends on the load: a benchmark's figure
            assert stamps[0] > started - 0.05
            nominal = stamps[0] + np.arange(len(stamps)) * 0.01
            assert np.all(np.abs(stamps - nominal) < 0.1)
            assert probe.wait_until(lambda: node_statuses(diagnostics)[-1][1].level
                                    == DiagnosticStatus.OK)

            sim.stop(signal.SIGKILL)                       # the TCU dies mid-stream
            killed_at = len(chunks(emg))
            assert probe.wait_until(lambda: any(
                "device lost" in s.message and s.level == DiagnosticStatus.ERROR
                for _, s in node_statuses(diagnostics)), 20), node.output()
            # (its log line may reach the output after the diagnostics, on a loaded machine)
            assert node.wait_for_output("device lost", timeout=30) and node.alive()
            time.sleep(1.0)
            received_during_outage = len(emg)
            sim = start_sim(ports)                         # ... and comes back
            assert probe.wait_until(lambda: len(emg) >= received_during_outage + 100, 30), \
                node.output() + sim.output()
            # streaming again, but the outage's samples were lost within the window: WARN, then
            # OK once the window (10 s) has passed
            assert probe.wait_until(lambda: any(
                s.level == DiagnosticStatus.WARN and "(EMG samples)" in s.message
                for _, s in node_statuses(diagnostics)), 20)
            assert probe.wait_until(lambda: node_statuses(diagnostics)[-1][1].level
                                    == DiagnosticStatus.OK, 30)
            warned = [s.message for _, s in node_statuses(diagnostics)
                      if s.level == DiagnosticStatus.WARN and "(EMG samples)" in s.message]
        finally:
            sim.stop()
        assert node.alive()
        everything = chunks(emg)
    gaps = [i for i in range(1, len(everything))
            if everything[i].first_sample_index != everything[i - 1].next_sample_index]
    assert len(gaps) == 1 and gaps[0] >= killed_at - 1
    before, after = everything[gaps[0] - 1], everything[gaps[0]]
    missing = after.first_sample_index - before.next_sample_index
    assert warned[0].startswith(f"{missing} lost in the last 10 s (EMG samples)")
    assert missing >= 2000                                 # > 1 s outage, visible in indices
    assert after.stamp - before.stamp == pytest.approx(
        (after.first_sample_index - before.first_sample_index) / 2000.0, abs=0.1)
    resumed = np.concatenate([c.data for c in everything[gaps[0]:]])
    looped = ABD[np.arange(len(resumed)) % len(ABD)]       # the new TCU starts the file over
    assert np.array_equal(resumed, looped)


def test_aux_on_legacy_ports_with_the_simulator_in_a_thread():
    sim = TrignoSimulator(EmgSource(np.tile([[5e-4, -7e-4]], (1000, 1)), [1, 4], loop=True),
                          SimulatorSettings.from_port_base(0)).start()
    params = dict(command_port=sim.ports["command"], emg_port=sim.ports["legacy_emg"],
                  aux_port=sim.ports["legacy_aux"], legacy=True, sensor_slots=[4, 1],
                  channel_names=["biceps", "triceps"], aux_enabled=True, publish_rate=0.0,
                  frame_id="trigno")
    try:
        with RosProbe() as probe, NodeProcess(NODE, "trigno_emg", params) as node:
            emg = probe.subscribe(SignalChunk, "/emg/raw")
            aux = probe.subscribe(SignalChunk, "/emg/aux")
            assert probe.wait_until(lambda: len(emg) >= 20 and len(aux) >= 20, 30), node.output()
            emg_chunks, aux_chunks = chunks(emg), chunks(aux)
    finally:
        sim.stop()
    assert sim.legacy
    assert all(c.sample_count == 27 for c in emg_chunks)           # one chunk per frame
    assert all(np.array_equal(c.data, np.tile([[np.float32(-7e-4), np.float32(5e-4)]], (27, 1)))
               for c in emg_chunks)
    assert emg_chunks[0].channel_names == ["biceps", "triceps"]
    a = aux_chunks[-1]
    assert a.channel_names == ["biceps_acc_x", "biceps_acc_y", "biceps_acc_z",
                               "triceps_acc_x", "triceps_acc_y", "triceps_acc_z"]
    assert a.unit == "m/s^2" and a.sample_count == 2
    assert a.sample_rate == pytest.approx(148.148, abs=1e-3)
    assert np.all(a.data[:, [2, 5]] == STANDARD_GRAVITY)
    assert all(b.first_sample_index == p.next_sample_index
               for p, b in zip(aux_chunks, aux_chunks[1:]))


@pytest.mark.parametrize("params, parameter", [
    (dict(sensor_slots=[0, 1]), "sensor_slots"),
    (dict(sensor_slots=[1, 2], channel_names=["only_one"]), "channel_names"),
    (dict(publish_rate=-5.0), "publish_rate"),
])
def test_bad_parameters_stop_the_node_with_a_clear_message(params, parameter):
    node = NodeProcess(NODE, "trigno_emg", params)
    assert node.process.wait(timeout=60) == 2
    output = node.output()
    assert "configuration error" in output and f"'{parameter}'" in output
    assert "Traceback" not in output


def test_a_stall_and_its_burst_reach_a_subscriber_on_the_device_clock():
    """The TCU holds its frames 0.8 s, then sends them at once: at a subscriber in another
    process, indices stay consecutive, stamps stay on one clock (stamp - index / rate), no
    stamp of a last sample is later than the message's receipt, and nothing is missing."""
    sim = TrignoSimulator(EmgSource(ABD[:, :2], [1, 2], loop=True),
                          SimulatorSettings.from_port_base(0)).start()
    params = dict(command_port=sim.ports["command"], emg_port=sim.ports["emg"],
                  sensor_slots=[1, 2], publish_rate=100.0, data_timeout=2.0, frame_id="trigno")
    try:
        with RosProbe() as probe, NodeProcess(NODE, "trigno_emg", params) as node:
            emg = probe.subscribe(SignalChunk, "/emg/raw")
            assert probe.wait_until(lambda: len(emg) >= 50, 30), node.output()
            sim.stall(0.8)
            assert probe.wait_until(lambda: sum(m.sample_count for _, m in list(emg))
                                    >= 1000 + 1600 + 1000, 30)
            received = [(t, msg_to_chunk(m)) for t, m in list(emg)]
    finally:
        sim.stop()
    chunks = [c for _, c in received]
    assert all(b.first_sample_index == a.next_sample_index for a, b in zip(chunks, chunks[1:]))
    # one clock: stamp - index / rate only tightens (the lowest arrival bound) or rises by the
    # allowed drift (1e-4 s/s); the burst stamped at its arrival would rise by the 0.8 s stall.
    # (How far it tightens is how late the first frames came: the machine's load.)
    anchors = np.array([c.stamp - c.first_sample_index / 2000.0 for c in chunks])
    assert np.all(np.diff(anchors) < 1e-3), np.diff(anchors).max()
    assert all(c.stamp + (c.sample_count - 1) / 2000.0 <= t for t, c in received)
    data = np.concatenate([c.data for c in chunks])
    first = chunks[0].first_sample_index
    assert np.array_equal(data, ABD[(first + np.arange(len(data))) % len(ABD), :2])
