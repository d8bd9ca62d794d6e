"""TrignoClient against TrignoSimulator over loopback (no ROS): values, order, recovery."""
import functools
import threading
import time

import numpy as np
import pytest

from biosig_ros.devices.device_link import DISCONNECTED, STREAMING
from biosig_ros.devices.trigno_client import STANDARD_GRAVITY, TrignoClient, TrignoSettings
from biosig_ros.devices.trigno_simulator import (EmgSource, SimulatorSettings, TrignoSimulator,
                                                 recording_source)
from biosig_ros.io.bio_file import load_bio
from biosig_ros.paths import resolve_data_path

from ros_harness import wait_until

ABD = load_bio(resolve_data_path("data/abd.bio"))["emg"]          # 10 x 14000, volts


_wait = functools.partial(wait_until, timeout=15.0)


class Collector:
    def __init__(self):
        self.chunks, self.aux, self.statuses, self.received = [], [], [], []
        self.lock = threading.Lock()

    def on_emg(self, chunk):
        with self.lock:
            self.chunks.append(chunk)
            self.received.append(time.time())

    def on_aux(self, chunk):
        with self.lock:
            self.aux.append(chunk)

    def on_status(self, status):
        with self.lock:
            self.statuses.append(status)

    def samples(self):
        with self.lock:
            return sum(c.sample_count for c in self.chunks)


def _client_for(sim, collector, **values):
    values = {"retry_interval": 0.2, "data_timeout": 2.0, **values}
    settings = TrignoSettings(command_port=sim.ports["command"], emg_port=sim.ports["emg"],
                              aux_port=sim.ports["aux"], **values)
    return TrignoClient(settings, collector.on_emg, collector.on_aux, collector.on_status)


@pytest.fixture
def abd_sim():
    sim = TrignoSimulator(recording_source("data/abd.bio", loop=True),
                          SimulatorSettings.from_port_base(0)).start()
    yield sim
    sim.stop()


def test_exact_values_in_order_with_names_rate_and_stamps(abd_sim):
    got = Collector()
    slots = [3, 1, 10]
    client = _client_for(abd_sim, got, sensor_slots=slots, channel_names=["c", "a", "j"],
                         publish_rate=100.0)
    before = time.time()
    client.start()
    try:
        assert _wait(lambda: got.samples() >= 2000)
    finally:
        client.stop()
    chunks = got.chunks
    assert all(c.channel_names == ["c", "a", "j"] and c.unit == "V" for c in chunks)
    assert all(c.sample_rate == pytest.approx(2000.0) for c in chunks)
    assert [c.sample_count for c in chunks[:-1]] == [20] * (len(chunks) - 1)
    assert [c.first_sample_index for c in chunks] == [20 * i for i in range(len(chunks))]
    data = np.concatenate([c.data for c in chunks])
    expected = ABD[[s - 1 for s in slots], :data.shape[0]].T.astype(np.float32).astype(float)
    assert np.array_equal(data, expected)
    # stamps: acquisition time of each chunk's first sample, on one time base
    stamps = np.array([c.stamp for c in chunks])
    assert before < stamps[0]
    nominal = stamps[0] + np.arange(len(chunks)) * 0.01
    # the clock only tightens (and follows clock drift, at most 100 us per second), by what
    # the first frame waited (how much: up to the machine's load)
    assert np.all(stamps <= nominal + 1e-4 * 3)
    assert np.all(np.diff(stamps) > 0)
    assert "START" in abd_sim.commands and abd_sim.commands[-2:] == ["STOP", "QUIT"]
    assert got.statuses[-1].state == "stopped"


def test_recovers_after_the_tcu_disappears_and_flags_the_gap(abd_sim):
    got = Collector()
    client = _client_for(abd_sim, got, sensor_slots=list(range(1, 11)), publish_rate=0.0)
    client.start()
    restarted = None
    try:
        assert _wait(lambda: got.samples() >= 1000)
        abd_sim.stop()                                       # the TCU goes away
        assert _wait(lambda: client.status.state == DISCONNECTED)
        assert client.status.message.startswith("device lost")
        time.sleep(0.5)
        with got.lock:
            before = len(got.chunks)
        assert before > 0
        settings = SimulatorSettings(command_port=abd_sim.ports["command"],
                                     emg_port=abd_sim.ports["emg"], aux_port=abd_sim.ports["aux"],
                                     legacy_emg_port=0, legacy_aux_port=0)
        restarted = TrignoSimulator(recording_source("data/abd.bio", loop=True), settings).start()
        assert _wait(lambda: len(got.chunks) >= before + 20)
        assert client.status.state == STREAMING and client.status.sessions == 2
    finally:
        client.stop()
        if restarted is not None:
            restarted.stop()
    chunks = got.chunks
    gaps = [i for i in range(1, len(chunks))
            if chunks[i].first_sample_index != chunks[i - 1].next_sample_index]
    assert len(gaps) == 1
    last, first = chunks[gaps[0] - 1], chunks[gaps[0]]
    missing = first.first_sample_index - last.next_sample_index
    outage_s = first.stamp - (last.stamp + last.sample_count / 2000.0)
    assert missing > 0 and outage_s > 0.5
    assert missing == pytest.approx(outage_s * 2000.0, abs=30)   # index and time agree
    assert client.emg.lost == missing                            # counted as lost
    # the restarted TCU streams the recording from its start again
    resumed = np.concatenate([c.data for c in chunks[gaps[0]:]])
    assert np.array_equal(resumed, ABD[:, :resumed.shape[0]].T.astype(np.float32).astype(float))


def test_a_rate_mismatch_is_reported_and_nothing_is_published():
    sim = TrignoSimulator(EmgSource(np.ones((100, 1)), [1], loop=True),
                          SimulatorSettings.from_port_base(0, replies={"MAX SAMPLES EMG?": "26"}))
    sim.start()
    got = Collector()
    client = _client_for(sim, got, sensor_slots=[1])
    client.start()
    try:
        assert _wait(lambda: client.status.state == DISCONNECTED)
    finally:
        client.stop()
        sim.stop()
    assert "1925.926 Hz" in client.status.last_error and "expected_rate" in client.status.last_error
    assert got.chunks == [] and "START" not in sim.commands


def test_legacy_big_endian_with_aux_in_si_units():
    sim = TrignoSimulator(EmgSource(np.tile([[1e-3, -2e-3]], (500, 1)), [2, 5], loop=True),
                          SimulatorSettings.from_port_base(0)).start()
    got = Collector()
    settings = TrignoSettings(
        command_port=sim.ports["command"], emg_port=sim.ports["legacy_emg"],
        aux_port=sim.ports["legacy_aux"], legacy=True, big_endian=True, sensor_slots=[5, 2],
        aux_enabled=True, aux_slots=[2], publish_rate=50.0, retry_interval=0.2)
    client = TrignoClient(settings, got.on_emg, got.on_aux, got.on_status)
    client.start()
    try:
        assert _wait(lambda: got.samples() >= 200 and len(got.aux) >= 5)
    finally:
        client.stop()
        sim.stop()
    assert sim.legacy and sim.big_endian                      # the client configured the TCU
    emg = np.concatenate([c.data for c in got.chunks])
    assert np.array_equal(emg[:, 0], np.full(len(emg), float(np.float32(-2e-3))))
    assert np.array_equal(emg[:, 1], np.full(len(emg), float(np.float32(1e-3))))
    aux = got.aux[0]
    assert aux.channel_names == ["EMG2_acc_x", "EMG2_acc_y", "EMG2_acc_z"]
    assert aux.unit == "m/s^2"
    assert aux.sample_rate == pytest.approx(2 / 0.0135)
    assert aux.sample_count == 3                              # 148.148 Hz / 50 Hz
    assert np.all(aux.data[:, 2] == STANDARD_GRAVITY)         # 1 g on z
    assert [c.first_sample_index for c in got.aux[:3]] == [0, 3, 6]


def test_a_recording_that_ends_is_a_device_loss_not_a_hang():
    sim = TrignoSimulator(EmgSource(np.ones((270, 1)), [1], loop=False),
                          SimulatorSettings.from_port_base(0)).start()
    got = Collector()
    # The simulator still answers on its command port: a stall, up to stall_timeout.
    client = _client_for(sim, got, sensor_slots=[1], publish_rate=0.0, data_timeout=0.5,
                         stall_timeout=1.0)
    client.start()
    try:
        assert _wait(lambda: client.status.failures >= 1)
    finally:
        client.stop()
        sim.stop()
    assert got.samples() == 270
    assert "no EMG data for" in client.status.last_error
    assert "longer than stall_timeout" in client.status.last_error


def _on_one_clock(chunks, received, rate=2000.0):
    """Stamps against indices and receive times: (largest rise of stamp - index / rate from one
    chunk to the next, largest excess of a chunk's last-sample stamp over the time it was
    received). On one device clock the first only tightens (by how late the first frames
    came: the machine's load) or rises by the allowed drift (1e-4 s/s); a burst stamped at
    its arrival would rise by the stall."""
    stamps = np.array([c.stamp for c in chunks])
    firsts = np.array([c.first_sample_index for c in chunks])
    lasts = stamps + (np.array([c.sample_count for c in chunks]) - 1) / rate
    anchor = stamps - firsts / rate
    return np.max(np.diff(anchor)), np.max(lasts - np.array(received))


def test_a_stall_and_its_burst_keep_indices_and_stamps_on_the_device_clock(abd_sim):
    """The TCU holds its frames (0.8 s, within data_timeout), then sends them at once: the same
    connection goes on, every sample arrives with consecutive indices, stamps stay on the device
    clock and none is later than its arrival."""
    got = Collector()
    client = _client_for(abd_sim, got, sensor_slots=[1, 2], publish_rate=100.0, data_timeout=2.0)
    client.start()
    try:
        assert _wait(lambda: got.samples() >= 1000)
        abd_sim.stall(0.8)
        assert _wait(lambda: got.samples() >= 1000 + 1600 + 1000)
    finally:
        client.stop()
    chunks, received = got.chunks, got.received
    assert all(b.first_sample_index == a.next_sample_index for a, b in zip(chunks, chunks[1:]))
    data = np.concatenate([c.data for c in chunks])
    assert np.array_equal(data, ABD[:2, :len(data)].T.astype(np.float32).astype(float))
    rise, ahead = _on_one_clock(chunks, received)
    assert rise < 1e-3 and ahead <= 1e-6, (rise, ahead)
    assert client.emg.lost == 0 and client.status.sessions == 1
    assert all(c.sample_count % 20 == 0 for c in chunks[:-1])      # the last: flushed at stop


def test_a_3s_stall_keeps_the_connection_and_every_sample_of_its_burst(abd_sim):
    """#22: a 3 s stall with data_timeout 1 s while the TCU answers on its command port: the
    data connection is kept (no reconnection, which threw the burst away), the held frames
    arrive in a burst on it, every sample with consecutive indices and its exact value,
    nothing counted lost; the status says "stalled" meanwhile, then streams again."""
    got = Collector()
    client = _client_for(abd_sim, got, sensor_slots=[1, 2], publish_rate=100.0,
                         data_timeout=1.0)
    client.start()
    try:
        assert _wait(lambda: got.samples() >= 1000)
        abd_sim.stall(3.0)
        assert wait_until(lambda: got.samples() >= 1000 + 6000 + 1000, timeout=30)
    finally:
        client.stop()
    chunks, received = got.chunks, got.received
    assert all(b.first_sample_index == a.next_sample_index for a, b in zip(chunks, chunks[1:]))
    data = np.concatenate([c.data for c in chunks])
    assert np.array_equal(data, ABD[:2, :len(data)].T.astype(np.float32).astype(float))
    assert client.emg.lost == 0 and client.status.sessions == 1
    messages = [status.message for status in got.statuses]
    assert any(m.startswith("stalled: no EMG data") for m in messages), messages
    assert messages[-1].startswith("streaming") or not client.running
    departure, ahead = _on_one_clock(chunks, received)
    assert departure < 0.005 and ahead <= 1e-6


def test_a_stall_longer_than_data_timeout_reconnects_into_the_burst_on_the_same_clock(abd_sim):
    """Without waiting for a stall (stall_timeout 0), a 2.5 s stall with data_timeout 1 s:
    the device is lost, the client reconnects and the
    held frames arrive in a burst on the new connection. Its first sample gets the index its
    acquisition time gives on the old clock (not its arrival time), stamps stay on that clock
    and never exceed arrival; any index jump is counted as lost."""
    got = Collector()
    client = _client_for(abd_sim, got, sensor_slots=[1], publish_rate=100.0, data_timeout=1.0,
                         stall_timeout=0.0)
    client.start()
    try:
        assert _wait(lambda: got.samples() >= 1000)
        abd_sim.stall(2.5)
        assert _wait(lambda: client.status.sessions >= 2 and got.samples() >= 1000 + 5000 + 1000)
    finally:
        client.stop()
    chunks, received = got.chunks, got.received
    rise, ahead = _on_one_clock(chunks, received)
    assert rise < 1e-3 and ahead <= 1e-6, (rise, ahead)
    # every index jump is counted as lost (how many: the samples that went by before the
    # reconnection, up to the machine's load)
    jumps = [b.first_sample_index - a.next_sample_index for a, b in zip(chunks, chunks[1:])]
    assert min(jumps) >= 0 and sum(jumps) == client.emg.lost


def test_a_read_that_brings_a_burst_is_one_message_of_whole_chunks():
    from biosig_ros.devices.stream_assembler import StreamAssembler

    out = []
    assembler = StreamAssembler([0], np.ones(1), ["a"], "V", 20, out.append)
    assembler.begin_segment(2000.0)
    for frame in range(5):                                 # paced frames: held for 50 ms
        assembler.push(np.zeros((27, 1)), 100.0 + frame * 0.0135)
    assert [c.sample_count for c in out] == [20] * 6       # then sent, in chunks of 20
    assembler.push(np.arange(1005.0)[:, None], 100.6)      # half a second held, at once
    assembler.push(np.zeros((40, 1)), 100.62)              # 2 chunks: not a burst
    assert [c.sample_count for c in out] == [20] * 6 + [1020, 20, 20]
    assert [c.first_sample_index for c in out[6:]] == [120, 1140, 1160]
    assert out[6].stamp == pytest.approx(out[0].stamp + 120 / 2000.0)
