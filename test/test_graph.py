"""The node graph started without ROS 2 launch: `python -m biosig_ros.graph NAME`."""
import os
import signal
import subprocess
import sys
import time

from sensor_msgs.msg import JointState

from biosig_ros.graph_spec import GRAPHS
from biosig_ros.msg import MarkerSet, SignalChunk

from ros_harness import REPO, RosProbe


def start_graph(*args):
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "biosig_ros.graph", *args], cwd=REPO, env=os.environ.copy(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def child_pids(pid):
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


def test_demo_graph_runs_the_whole_chain_and_stops_cleanly_on_ctrl_c(tmp_path):
    with RosProbe() as probe:
        raw = probe.subscribe(SignalChunk, "/emg/raw")
        envelope = probe.subscribe(SignalChunk, "/emg/envelope")
        markers = probe.subscribe(MarkerSet, "/markers")
        joints = probe.subscribe(JointState, "/ik/joint_states")
        graph = start_graph("demo", "--set", "bridge.port=0",
                            "--set", f"bridge.record_directory={tmp_path}")
        try:
            flowing = probe.wait_until(
                # 3 s of data: the monitor (1 line per second) has printed by then, even when
                # it started after the data began (a loaded machine, the live view starting too)
                lambda: min(len(raw), len(envelope), len(markers), len(joints)) >= 300,
                timeout=90)
            children = child_pids(graph.pid)
        finally:
            graph.send_signal(signal.SIGINT)
            output, _ = graph.communicate(timeout=60)
    assert flowing, (len(raw), len(envelope), len(markers), len(joints), output)
    assert graph.returncode == 0, output
    assert len(children) == len(GRAPHS["demo"]), output
    # Every node process is gone after the runner returns.
    time.sleep(0.5)
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
    assert "[monitor] /emg/raw" in output and "samples/s" in output
    assert "[graph] stopped" in output


def test_a_node_that_fails_to_start_stops_the_graph_with_its_status():
    graph = start_graph("demo", "--set", "replay.file=data/missing.bio",
                        "--set", "bridge.port=0")
    output, _ = graph.communicate(timeout=90)
    assert graph.returncode == 2, output
    assert "recording file not found: data/missing.bio" in output
    assert "replay exited with status 2; stopping the graph" in output
