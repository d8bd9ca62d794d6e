"""Supervision across processes: each node of the demo killed with SIGKILL in turn is started
again by the graph runner within seconds, while the others keep publishing and the bridge keeps
recording (after its own restart, into a new file); a configuration error still stops the
graph with status 2 instead of restarting forever."""
import os
import signal
import time

from biosiglive import load
import pytest
from sensor_msgs.msg import JointState

from biosig_ros.msg import MarkerSet, SignalChunk

from graph_harness import GraphProcess
from ros_harness import RosProbe

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

# node -> the topic it publishes (the monitor publishes nothing: its printed lines count).
OUTPUT_OF = {"replay": "/markers", "emg_processing": "/emg/envelope", "ik": "/ik/joint_states",
             "bridge": None, "monitor": None}
TOPICS = {"/emg/raw": SignalChunk, "/markers": MarkerSet, "/emg/envelope": SignalChunk,
          "/ik/joint_states": JointState}
# Stream -> nodes it needs (it stops while one of them is down).
NEEDS = {"/emg/raw": {"replay"}, "/markers": {"replay"},
         "/emg/envelope": {"replay", "emg_processing"}, "/ik/joint_states": {"replay", "ik"}}


def count_since(messages, since):
    return sum(1 for t, _ in list(messages) if t >= since)


def recording_size(directory):
    return sum(p.stat().st_size for p in directory.glob("*.bio"))


def test_each_node_killed_comes_back_while_the_others_keep_going(tmp_path):
    with RosProbe() as probe:
        received = {topic: probe.subscribe(kind, topic) for topic, kind in TOPICS.items()}
        with GraphProcess("demo", "--port", "0", "--record-directory", str(tmp_path)) as graph:
            assert probe.wait_until(lambda: all(len(v) >= 50 for v in received.values()),
                                    timeout=180), graph.output()[-3000:]
            for name in OUTPUT_OF:
                pids = graph.node_pids()
                assert name in pids, (name, pids)
                killed_at = time.time()
                size_before = recording_size(tmp_path)
                os.kill(pids[name], signal.SIGKILL)
                assert graph.wait_for(rf"\[graph\] {name} exited with status -9; restarting",
                                      timeout=30), graph.output()[-3000:]
                # The others keep going while it is down or starting. (Fast DDS's shared-memory
                # transport may hold a publisher for a few seconds after a reader was killed.)
                others = [topic for topic, needs in NEEDS.items() if name not in needs]
                assert probe.wait_until(lambda: all(
                    count_since(received[topic], killed_at) > 10 for topic in others),
                    timeout=60), (name, {t: count_since(received[t], killed_at) for t in others},
                                  graph.output()[-3000:])
                if name != "bridge" and others:  # (with the replay down nothing flows)
                    assert probe.wait_until(lambda: recording_size(tmp_path) > size_before,
                                            timeout=60), f"recording stalled ({name})"
                # It comes back: a new process, and its output flows again.
                assert probe.wait_until(
                    lambda: graph.node_pids().get(name, pids[name]) != pids[name], timeout=30)
                restarted_at = time.time()
                if OUTPUT_OF[name]:
                    assert probe.wait_until(
                        lambda: count_since(received[OUTPUT_OF[name]], restarted_at) > 10,
                        timeout=120), (name, graph.output()[-3000:])
                elif name == "bridge":
                    assert probe.wait_until(lambda: len(list(tmp_path.glob("*.bio"))) == 2,
                                            timeout=120), graph.output()[-3000:]
                    size = recording_size(tmp_path)
                    assert probe.wait_until(lambda: recording_size(tmp_path) > size, timeout=60), (
                        [(p.name, p.stat().st_size) for p in tmp_path.glob("*.bio")],
                        [line for line in graph.output().splitlines() if "[monitor]" not in line])
                else:
                    lines = graph.output().count("[monitor] /markers")
                    assert probe.wait_until(
                        lambda: graph.output().count("[monitor] /markers") > lines + 2,
                        timeout=120), graph.output()[-3000:]
        assert graph.process.returncode == 0, graph.output()[-3000:]
    output = graph.output()
    assert output.count("restarting in 2 s") == len(OUTPUT_OF), output[-3000:]
    first, second = sorted(tmp_path.glob("*.bio"))
    assert len(load(str(first))["raw_device_data"]) > 0  # what was written before the kill
    assert len(load(str(second))["raw_device_data"]) > 0  # after the restart, to the end


def test_a_configuration_error_after_a_crash_still_stops_the_graph():
    with GraphProcess("demo", "--port", "0", "--set", "ik.model_path=data/missing.bioMod",
                      "--set", "monitor.period=0.5") as graph:
        assert graph.process.wait(timeout=180) == 2, graph.output()[-3000:]
    output = graph.output()
    assert "[graph] ik exited with status 2; stopping the graph" in output
    assert "restarting" not in output
