"""A recording without EMG does not wait for the nodes that only listen to EMG (#22): the
replay waits for [emg_processing, ik]; emg_processing subscribes to emg/raw, which this
recording does not have, so only ik's subscription to markers is awaited."""
from biosig_ros.msg import MarkerSet, SignalChunk

import pytest
from ros_harness import NodeProcess, RosProbe, shipped_parameters

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)


def test_a_recording_without_emg_plays_once_the_marker_consumer_listens():
    params = shipped_parameters("replay_abd.yaml", signal_key="", loop=False,
                                wait_for_nodes=["emg_processing", "ik"], wait_timeout=600.0)
    with RosProbe("emg_processing") as emg, RosProbe("ik") as ik:
        emg.subscribe(SignalChunk, "/emg/raw")
        frames = ik.subscribe(MarkerSet, "/markers")
        with NodeProcess("biosig_ros.nodes.replay_node", "replay", params) as replay:
            # Far below wait_timeout: playing at all shows the EMG consumer was not awaited.
            assert ik.wait_until(lambda: len(frames) > 20, timeout=120), replay.output()
            output = replay.output()
    assert "consumers ready after" in output, output
    assert "without all consumers" not in output, output
    assert "EMG: none" in output


def test_a_missing_marker_consumer_is_still_awaited():
    """The EMG consumer alone does not start a replay that has markers for ik."""
    params = shipped_parameters("replay_abd.yaml", signal_key="", loop=False,
                                wait_for_nodes=["emg_processing", "ik"], wait_timeout=600.0)
    with RosProbe("emg_processing") as emg:
        emg.subscribe(SignalChunk, "/emg/raw")
        frames = emg.subscribe(MarkerSet, "/markers_elsewhere")
        with NodeProcess("biosig_ros.nodes.replay_node", "replay", params) as replay:
            assert replay.wait_for_output("waiting for nodes emg_processing, ik")
            seen = emg.subscribe(MarkerSet, "/markers")
            assert not emg.wait_until(lambda: len(seen) > 0, timeout=5)
            assert "consumers ready" not in replay.output()
    assert frames == []
