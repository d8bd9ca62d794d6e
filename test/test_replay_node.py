"""Multi-process tests of replay_node: a separate process publishes, this one subscribes."""
import pickle

import numpy as np
import pytest

from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.ros.conversions import msg_to_chunk, msg_to_frame, time_to_seconds

from ros_harness import REPO, NodeProcess, RosProbe, shipped_parameters

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

MODULE = "biosig_ros.nodes.replay_node"
EMG_NAMES = [f"EMG{i}" for i in range(1, 11)]


def shipped_params(**overrides) -> dict:
    """config/replay_abd.yaml's parameters with overrides."""
    return shipped_parameters("replay_abd.yaml", **overrides)


@pytest.fixture
def probe():
    with RosProbe() as ros_probe:
        yield ros_probe


def test_every_chunk_of_abd_arrives_contiguous_with_exact_values(probe):
    chunks = probe.subscribe(SignalChunk, "/emg/raw")
    frames = probe.subscribe(MarkerSet, "/markers")
    params = shipped_params(loop=False, wait_for_subscribers=1, wait_for_nodes=[])
    with NodeProcess(MODULE, "replay", params) as node:
        assert probe.wait_until(lambda: len(chunks) >= 700 and len(frames) >= 700, timeout=40), (
            f"got {len(chunks)} chunks, {len(frames)} frames\n{node.output()}")
    with open(REPO / "data" / "abd.bio", "rb") as file:
        raw = pickle.load(file)

    received = [msg_to_chunk(msg) for _, msg in chunks]
    assert [c.first_sample_index for c in received] == list(range(0, 14000, 20))
    assert all(c.channel_names == EMG_NAMES and c.unit == "V" and c.sample_rate == 2000.0
               for c in received)
    np.testing.assert_array_equal(np.concatenate([c.data for c in received]).T, raw["emg"])
    # Stamps advance by exactly one chunk period (20 samples at 2 kHz).
    stamps = np.array([c.stamp for c in received])
    np.testing.assert_allclose(np.diff(stamps), 0.01, atol=1e-6)

    markers = [msg_to_frame(msg) for _, msg in frames]
    assert [m.frame_number for m in markers] == list(range(700))
    positions = np.stack([m.positions for m in markers])          # frames x markers x 3, m
    np.testing.assert_allclose(positions, np.transpose(raw["markers"], (2, 1, 0)) / 1000.0)
    assert markers[0].marker_names[13:15] == ["LARM_elb", "STYLu"]
    # The stamp of a chunk is when its first sample was acquired: its last sample arrives
    # one chunk period later, so it is never received before its stamp.
    assert all(t >= time_to_seconds(msg.header.stamp) for t, msg in chunks)


@pytest.mark.parametrize("params, message", [
    ({"file": "data/missing.bio"}, "recording file not found: data/missing.bio"),
    ({"file": "package.xml"}, "unsupported recording format '.xml'"),
    ({"file": "data/abd.bio", "channel_names": ["only", "two"]}, "channel_names lists 2"),
    ({"file": "data/abd.bio", "speed": -1.0}, "speed must be > 0"),
])
def test_bad_input_exits_with_a_clear_message(params, message):
    node = NodeProcess(MODULE, "replay", params)
    assert node.process.wait(timeout=30) == 2
    output = node.output()
    assert message in output
    assert "Traceback" not in output
