"""Custom devices and partial reads (#22): SampleFramer completes a sample cut across reads;
the code block of docs/custom_device.md, run as is against a TCP server that cuts samples
across sends and stalls mid-sample, delivers every value in order (the documented pattern
before, recv then reshape, failed: "cannot reshape array of size 1024 into shape (3)"); the
UDP example drops a cut datagram's partial sample instead of failing; the example graph's
amplifier port is an argument."""
import re
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from biosig_ros.devices.framing import SampleFramer
from graph_harness import GraphProcess
from ros_harness import REPO

CHANNELS = 3


def samples(count: int) -> np.ndarray:
    return np.arange(count * CHANNELS, dtype="<f4").reshape(count, CHANNELS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30))
def test_any_cut_of_the_byte_stream_gives_the_same_samples(cuts):
    sent = samples(200)
    data = sent.tobytes()
    framer, out, position = SampleFramer(CHANNELS, "<f4"), [], 0
    for size in cuts + [len(data)]:
        block = framer.feed(data[position:position + size])
        position += size
        if block is not None:
            assert block.shape[1] == CHANNELS
            out.append(block)
    np.testing.assert_array_equal(np.concatenate(out), sent)
    assert framer.pending_bytes == 0


def test_the_old_pattern_fails_where_the_framer_does_not():
    data = samples(100).tobytes()[:1024]           # 1024 bytes: 85 samples and a third
    with pytest.raises(ValueError, match="cannot reshape array of size 256 into shape"):
        np.frombuffer(data, "<f4").reshape(-1, CHANNELS)
    framer = SampleFramer(CHANNELS)
    assert framer.feed(data).shape == (85, 3) and framer.pending_bytes == 4
    assert framer.feed(samples(100).tobytes()[1024:]).shape == (15, 3)


def test_a_datagram_keeps_its_whole_samples_and_counts_the_rest():
    framer = SampleFramer(CHANNELS)
    payload = samples(4).tobytes()
    np.testing.assert_array_equal(framer.datagram(payload[:-5]), samples(4)[:3])
    assert framer.dropped_bytes == 7 and framer.pending_bytes == 0
    assert framer.datagram(payload[:5]) is None
    np.testing.assert_array_equal(framer.datagram(payload), samples(4))   # nothing carried


def documented_device():
    """The ```python block of docs/custom_device.md that defines MyAmplifier, run as is."""
    page = (REPO / "docs" / "custom_device.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", page, re.DOTALL)
                 if "class MyAmplifier" in b)
    assert "SampleFramer" in block
    namespace = {}
    exec(compile(block, "docs/custom_device.md", "exec"), namespace)  # noqa: S102
    return namespace["MyAmplifier"], namespace["MyAmplifierSettings"]


def test_the_documented_device_survives_partial_reads_and_a_stall():
    device_type, settings_type = documented_device()
    sent = samples(3000) / 1000
    data = sent.astype("<f4").tobytes()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        connection, _ = server.accept()
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            position, rng = 0, np.random.default_rng(1)
            while position < len(data):
                size = int(rng.integers(1, 1500))        # never a whole number of samples
                connection.sendall(data[position:position + size])
                position += size
                if position // 1500 == 5:                # a stall with half a sample sent
                    time.sleep(0.5)
                time.sleep(0.001)
            time.sleep(2.0)

    threading.Thread(target=serve, daemon=True).start()
    chunks = []
    device = device_type(settings_type(host="127.0.0.1", port=port, sample_rate=1000.0,
                                       channel_names=["a", "b", "c"], data_timeout=5.0),
                         chunks.append)
    device.start()
    try:
        deadline = time.monotonic() + 60
        while sum(c.sample_count for c in list(chunks)) < len(sent) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        device.stop()
        server.close()
    received = np.concatenate([c.data for c in chunks])
    np.testing.assert_array_equal(received[:len(sent)], sent.astype("<f4"))
    starts = [c.first_sample_index for c in chunks]
    assert starts == sorted(starts) and starts[0] == 0


def test_the_example_graphs_amplifier_port_is_an_argument(tmp_path):
    from biosig_ros.graph import graph_commands

    commands = graph_commands("custom_device", {"amplifier_port": "52011"}, {}, tmp_path)
    simulator = commands["udp_amplifier_sim"]
    assert simulator[simulator.index("--port", simulator.index("--port") + 1) + 1] == "52011"
    node_file = next(w for w in commands["udp_amplifier"] if w.endswith(".arguments.yaml"))
    assert "port: 52011" in open(node_file, encoding="utf-8").read()


@pytest.mark.integration
def test_the_example_graph_runs_on_another_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with GraphProcess("custom_device", "--amplifier-port", str(port)) as graph:
        # the simulator sends there and the node reads there (stopped once both are seen)
        assert graph.wait_for(rf"listening on UDP {port}\b"), graph.output()[-3000:]
        assert graph.wait_for(rf"UDP amplifier 127\.0\.0\.1:{port}\b"), graph.output()[-3000:]
