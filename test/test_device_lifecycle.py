"""The device nodes as managed nodes, driven over the standard lifecycle services from another
process, against their simulators; and a normal stop that logs no error."""
import signal
import time

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition, TransitionEvent
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter

from biosig_ros.devices.trigno_simulator import SimulatorSettings, TrignoSimulator, recording_source
from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.ros.conversions import msg_to_chunk
from ros_harness import NodeProcess, RosProbe
from test_trigno_node import free_ports, start_sim
from test_vicon_node import shipped_params

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

TRIGNO = "biosig_ros.nodes.trigno_emg_node"
VICON = "biosig_ros.nodes.vicon_markers_node"


def change(probe, node, transition_id):
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return probe.call(ChangeState, f"/{node}/change_state", request).success


def state(probe, node):
    return probe.call(GetState, f"/{node}/get_state", GetState.Request()).current_state.label


def quiet_for(received, seconds=0.5):
    """True when nothing arrives for `seconds` (after what was in flight had landed); the
    streams checked publish every 10 ms: half a second of silence is 50 messages missing."""
    time.sleep(0.5)
    count = len(received)
    time.sleep(seconds)
    return len(received) == count


@pytest.fixture
def sim():
    simulator = TrignoSimulator(recording_source("data/abd.bio", loop=True),
                                SimulatorSettings.from_port_base(0)).start()
    yield simulator
    simulator.stop()


def test_trigno_node_through_its_lifecycle(sim):
    params = dict(command_port=sim.ports["command"], emg_port=sim.ports["emg"],
                  sensor_slots=[1, 2], autostart=False, frame_id="trigno_lc",
                  retry_interval=0.3)
    with RosProbe() as probe, NodeProcess(TRIGNO, "trigno_emg", params) as node:
        emg = probe.subscribe(SignalChunk, "/emg/raw")
        events = probe.subscribe(TransitionEvent, "/trigno_emg/transition_event")
        assert state(probe, "trigno_emg") == "unconfigured", node.output()
        assert quiet_for(emg) and emg == [] and sim.connections()["command"] == 0

        assert change(probe, "trigno_emg", Transition.TRANSITION_CONFIGURE), node.output()
        assert state(probe, "trigno_emg") == "inactive"
        assert sim.connections()["command"] == 1 and "SENSOR 2 PAIRED?" in sim.commands
        assert quiet_for(emg) and emg == [] and "START" not in sim.commands

        assert change(probe, "trigno_emg", Transition.TRANSITION_ACTIVATE)
        assert probe.wait_until(lambda: len(emg) >= 50, 30), node.output()

        assert change(probe, "trigno_emg", Transition.TRANSITION_DEACTIVATE)
        assert sim.commands[-1] == "STOP" and not sim.streaming.is_set()
        assert quiet_for(emg) and sim.connections()["emg"] == 0
        paused_at = len(emg)
        time.sleep(0.5)  # paused for 1.5 s in all (with quiet_for): above the 1 s checked below

        assert change(probe, "trigno_emg", Transition.TRANSITION_ACTIVATE)
        assert probe.wait_until(lambda: len(emg) >= paused_at + 50, 30), node.output()
        assert sim.commands.count("START") == 2

        assert change(probe, "trigno_emg", Transition.TRANSITION_DEACTIVATE)
        assert change(probe, "trigno_emg", Transition.TRANSITION_CLEANUP)
        assert state(probe, "trigno_emg") == "unconfigured"
        assert probe.wait_until(lambda: sum(sim.connections().values()) == 0, 10)
        assert sim.commands[-2:] == ["STOP", "QUIT"]
        assert probe.wait_until(lambda: len(events) >= 10)
        goals = [m.goal_state.label for _, m in list(events)]
        assert node.alive() and "[ERROR]" not in node.output()
        chunks = [msg_to_chunk(m) for _, m in list(emg)]
    assert goals == ["configuring", "inactive", "activating", "active", "deactivating",
                     "inactive", "activating", "active", "deactivating", "inactive",
                     "cleaningup", "unconfigured"][:len(goals)]
    # One clock through the pause: the index jumps by the samples of the paused time.
    gaps = [i for i in range(1, len(chunks))
            if chunks[i].first_sample_index != chunks[i - 1].next_sample_index]
    assert len(gaps) == 1
    before, after = chunks[gaps[0] - 1], chunks[gaps[0]]
    skipped = after.first_sample_index - before.next_sample_index
    assert skipped >= 2000 * 1.0
    assert after.stamp - before.stamp == pytest.approx(
        (after.first_sample_index - before.first_sample_index) / 2000.0, abs=0.05)
    stamps = np.array([c.stamp for c in chunks])
    assert np.all(np.diff(stamps) > 0)


def test_a_configure_without_a_device_fails_and_leaves_the_node_unconfigured():
    ports = free_ports(5)
    params = dict(command_port=ports[0], emg_port=ports[3], autostart=False,
                  connect_timeout=0.5, sensor_slots=[1])
    with RosProbe() as probe, NodeProcess(TRIGNO, "trigno_emg", params) as node:
        emg = probe.subscribe(SignalChunk, "/emg/raw")
        assert not change(probe, "trigno_emg", Transition.TRANSITION_CONFIGURE)
        assert state(probe, "trigno_emg") == "unconfigured"
        assert "configure failed" in node.output() and "Connection refused" in node.output()
        simulator = start_sim(ports)                   # the TCU appears: a retry succeeds
        try:
            assert probe.wait_until(lambda: change(
                probe, "trigno_emg", Transition.TRANSITION_CONFIGURE), 30, interval=0.5)
            assert change(probe, "trigno_emg", Transition.TRANSITION_ACTIVATE)
            assert probe.wait_until(lambda: len(emg) >= 20, 30), node.output()
            time.sleep(1.5)                            # diagnostics and logs of the streaming
        finally:
            simulator.stop()
        errors = [line for line in node.output().splitlines() if "[ERROR]" in line]
        assert errors and all("configure failed" in line for line in errors), errors
        assert node.alive()


def test_vicon_node_through_its_lifecycle():
    params = shipped_params("vicon_markers.yaml", "vicon_sim.yaml")
    params.update(autostart=False, frame_id="vicon_lc", buffer_size=1000)
    with RosProbe() as probe, NodeProcess(VICON, "vicon_markers", params) as node:
        markers = probe.subscribe(MarkerSet, "/markers")
        assert state(probe, "vicon_markers") == "unconfigured", node.output()
        assert change(probe, "vicon_markers", Transition.TRANSITION_CONFIGURE), node.output()
        assert quiet_for(markers) and markers == []
        assert change(probe, "vicon_markers", Transition.TRANSITION_ACTIVATE)
        assert probe.wait_until(lambda: len(markers) >= 50, 30), node.output()
        assert change(probe, "vicon_markers", Transition.TRANSITION_DEACTIVATE)
        assert quiet_for(markers)
        paused_at = len(markers)
        time.sleep(0.5)  # paused for 1.5 s in all (with quiet_for): 150 frames, 100 checked
        assert change(probe, "vicon_markers", Transition.TRANSITION_ACTIVATE)
        assert probe.wait_until(lambda: len(markers) >= paused_at + 50, 30), node.output()
        assert change(probe, "vicon_markers", Transition.TRANSITION_DEACTIVATE)
        assert change(probe, "vicon_markers", Transition.TRANSITION_CLEANUP)
        assert state(probe, "vicon_markers") == "unconfigured"
        assert node.alive() and "[ERROR]" not in node.output()
        numbers = [m.frame_number for _, m in list(markers)]
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in list(markers)]
    jumps = [(i, b - a) for i, (a, b) in enumerate(zip(numbers, numbers[1:])) if b != a + 1]
    assert len(jumps) == 1 and jumps[0][1] > 100          # Vicon's numbers ran on (~1.5 s)
    i = jumps[0][0]
    assert stamps[i + 1] - stamps[i] == pytest.approx(jumps[0][1] / 100.0, abs=0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_normal_stop_of_device_and_node_together_logs_no_error(sig):
    """Ctrl-C reaches the simulator and the node at once (one process group); the simulator may
    close its sockets first. The node must not call that a device loss."""
    ports = free_ports(5)
    params = dict(command_port=ports[0], emg_port=ports[3], sensor_slots=[1], retry_interval=0.2)
    simulator = start_sim(ports)
    with RosProbe() as probe, NodeProcess(TRIGNO, "trigno_emg", params) as node:
        emg = probe.subscribe(SignalChunk, "/emg/raw")
        assert probe.wait_until(lambda: len(emg) >= 20, 30), node.output() + simulator.output()
        simulator.process.send_signal(sig)
        node.process.send_signal(sig)
        assert node.process.wait(timeout=20) == 0
        simulator.stop()
        output = node.output()
    assert "streaming" in output
    assert "[ERROR]" not in output and "device lost" not in output, output


def set_parameter(probe, node, name, value):
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return probe.call(SetParameters, f"/{node}/set_parameters", request).results[0]


def test_device_parameters_read_only_or_in_effect_at_once(sim):
    """publish_rate changes the chunk size at once with continuous indices; a read-only one
    (host, frame_id) is refused with a reason; on the Vicon node too."""
    params = dict(command_port=sim.ports["command"], emg_port=sim.ports["emg"],
                  sensor_slots=[1], publish_rate=100.0)
    with RosProbe() as probe, NodeProcess(TRIGNO, "trigno_emg", params) as node:
        emg = probe.subscribe(SignalChunk, "/emg/raw")
        assert probe.wait_until(lambda: len(emg) >= 20, 30), node.output()
        refused = set_parameter(probe, "trigno_emg", "host", "10.0.0.1")
        assert not refused.successful and "read" in refused.reason
        assert not set_parameter(probe, "trigno_emg", "frame_id", "lab").successful
        assert not set_parameter(probe, "trigno_emg", "publish_rate", -1.0).successful
        changed_at = len(emg)
        assert set_parameter(probe, "trigno_emg", "publish_rate", 50.0).successful
        assert probe.wait_until(lambda: len(emg) >= changed_at + 40, 30)
        chunks = [msg_to_chunk(m) for _, m in list(emg)]
        assert {m.header.frame_id for _, m in list(emg)} == {"world"}     # the default
    assert all(b.first_sample_index == a.next_sample_index for a, b in zip(chunks, chunks[1:]))
    assert chunks[1].sample_count == 20 and chunks[-1].sample_count == 40

    params = shipped_params("vicon_markers.yaml", "vicon_sim.yaml")
    with RosProbe() as probe, NodeProcess(VICON, "vicon_markers", params) as node:
        refused = set_parameter(probe, "vicon_markers", "subject", "bob")
        assert not refused.successful and "read" in refused.reason


def test_the_lifecycle_state_shows_on_diagnostics_through_shutdown():
    """Each state is on /diagnostics (message and the 'lifecycle' value); after a shutdown
    the node keeps reporting, as finalized and not streaming, never as OK streaming."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    params = shipped_params("vicon_markers.yaml", "vicon_sim.yaml")
    params.update(autostart=True)
    with RosProbe() as probe, NodeProcess(VICON, "vicon_markers", params) as node:
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")

        def statuses(since=0):
            return [s for _, m in list(diagnostics)[since:] for s in m.status
                    if s.name == "vicon_markers"]

        def lifecycle(status):
            return {kv.key: kv.value for kv in status.values}.get("lifecycle")

        assert probe.wait_until(lambda: any(lifecycle(s) == "active" and "streaming" in s.message
                                            for s in statuses()), 60), node.output()
        assert change(probe, "vicon_markers", Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert state(probe, "vicon_markers") == "finalized"
        after = len(diagnostics)
        assert probe.wait_until(lambda: len(statuses(after)) >= 3, 30), node.output()
        reported = statuses(after)
        assert node.alive()
    for status in reported:
        assert lifecycle(status) == "finalized", status
        assert status.message.startswith("finalized"), status.message
        level = status.level
        assert (int.from_bytes(level, "little") if isinstance(level, bytes) else level) \
            == int.from_bytes(DiagnosticStatus.WARN, "little")
