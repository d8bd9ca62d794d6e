"""The custom-device base class through its worked example, the UDP amplifier: without ROS
(values, lost packets counted), and as a lifecycle node against its simulator in another
process, killed and restarted (the same loss/return test as the Trigno node)."""
import signal
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from biosig_ros.devices.device_link import DISCONNECTED
from biosig_ros.devices.udp_amplifier import (UdpAmplifier, UdpAmplifierSettings,
                                              UdpAmplifierSimulator)
from biosig_ros.errors import ConfigError
from biosig_ros.msg import SignalChunk
from biosig_ros.ros.conversions import msg_to_chunk
from ros_harness import NodeProcess, RosProbe, wait_until
from test_trigno_node import free_ports

NODE = "biosig_ros.nodes.udp_amplifier_node"
SIM = "biosig_ros.devices.udp_amplifier"


def expected(chunk):
    return UdpAmplifierSimulator.values(chunk.first_sample_index, chunk.sample_count, 1000.0, 4)


def test_values_indices_and_lost_packets_without_ros():
    sim = UdpAmplifierSimulator(drop_every=7).start()      # one packet in 7 never arrives
    got, lock = [], threading.Lock()

    def on_chunk(chunk):
        with lock:
            got.append(chunk)

    device = UdpAmplifier(UdpAmplifierSettings(port=sim.port, retry_interval=0.2), on_chunk)
    device.start()
    try:
        assert wait_until(lambda: len(got) >= 100, 20)
    finally:
        device.stop()
        # STOP is one datagram: on a loaded machine the simulator's thread reads it later
        stopped = wait_until(lambda: sim.commands[-1:] == [b"STOP"], 10)
        sim.stop()
    assert all(np.array_equal(c.data, expected(c)) for c in got)     # each sample at its index
    jumps = sum(b.first_sample_index - a.next_sample_index for a, b in zip(got, got[1:]))
    assert jumps > 0 and jumps % 10 == 0 and jumps == device.assembler.lost
    stamps = np.array([c.stamp for c in got])
    anchor = stamps - np.array([c.first_sample_index for c in got]) / 1000.0
    # one clock, across the lost packets: stamp - index / rate only tightens (how much: how
    # late the first packets came, the machine's load) or rises by the allowed drift
    assert np.all(np.diff(anchor) < 1e-3), np.diff(anchor).max()
    assert stopped and sim.commands[:2] == [b"HELLO", b"START"]


def test_a_rate_mismatch_fails_the_connection_with_the_reason():
    sim = UdpAmplifierSimulator(rate=500.0).start()
    device = UdpAmplifier(UdpAmplifierSettings(port=sim.port), lambda chunk: None)
    try:
        with pytest.raises(Exception, match="4 channels at 500 Hz, the parameters say 4 at 1000"):
            device.open()
        assert device.status.state == DISCONNECTED
    finally:
        device.stop()
        sim.stop()


def test_bad_settings_are_a_config_error():
    with pytest.raises(ConfigError, match="publish_rate"):
        UdpAmplifierSettings(publish_rate=5000.0)


def node_statuses(diagnostics):
    return [s for _, m in list(diagnostics) for s in m.status if s.name == "udp_amplifier"]


@pytest.mark.integration
def test_the_example_node_survives_its_device_and_counts_what_was_lost():
    port = free_ports(1)[0]
    params = dict(port=port, retry_interval=0.3, frame_id="amp")
    sim = NodeProcess(SIM, "udp_amplifier_sim", ros=False, args=["--port", str(port)])
    with RosProbe() as probe, NodeProcess(NODE, "udp_amplifier", params) as node:
        data = probe.subscribe(SignalChunk, "/amplifier/raw")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        try:
            assert probe.wait_until(lambda: len(data) >= 100, 30), node.output() + sim.output()
            assert probe.wait_until(lambda: node_statuses(diagnostics)[-1].level
                                    == DiagnosticStatus.OK)
            sim.stop(signal.SIGKILL)                       # the device dies mid-stream
            assert probe.wait_until(lambda: any(
                "device lost" in s.message and s.level == DiagnosticStatus.ERROR
                for s in node_statuses(diagnostics)), 20), node.output()
            time.sleep(1.0)
            during_outage = len(data)
            sim = NodeProcess(SIM, "udp_amplifier_sim", ros=False, args=["--port", str(port)])
            assert probe.wait_until(lambda: len(data) >= during_outage + 100, 30), \
                node.output() + sim.output()
            assert probe.wait_until(lambda: any(
                s.level == DiagnosticStatus.WARN and "(samples)" in s.message
                for s in node_statuses(diagnostics)), 20)
            assert probe.wait_until(lambda: node_statuses(diagnostics)[-1].level
                                    == DiagnosticStatus.OK, 30)
        finally:
            sim.stop()
        assert node.alive() and "device lost" in node.output()
        chunks = [msg_to_chunk(m) for _, m in list(data) if m.header.frame_id == "amp"]
    gaps = [i for i in range(1, len(chunks))
            if chunks[i].first_sample_index != chunks[i - 1].next_sample_index]
    assert len(gaps) == 1
    before, after = chunks[gaps[0] - 1], chunks[gaps[0]]
    assert after.first_sample_index - before.next_sample_index >= 1000     # > 1 s outage
    assert after.stamp - before.stamp == pytest.approx(
        (after.first_sample_index - before.first_sample_index) / 1000.0, abs=0.05)
    # the restarted amplifier counts from 0 again: its samples are placed by the clock
    assert np.array_equal(chunks[0].data, expected(chunks[0]))
