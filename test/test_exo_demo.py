"""The exo_demo graph: replay of data/abd.bio -> EMG processing (low-delay envelope) -> IK ->
assist -> simulated exo, started with `python -m biosig_ros.graph exo_demo`."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from biosig_ros.msg import AssistState, SignalChunk

from ros_harness import REPO, RosProbe, shipped_parameters
from test_graph import start_graph


def enable_with_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "biosig_ros.nodes.assist_enable", *args],
                          cwd=REPO, env=os.environ.copy(), capture_output=True, text=True,
                          timeout=60)


def test_exo_demo_assists_the_simulated_elbow_from_the_recording():
    assist = shipped_parameters("assist.yaml")
    limit = assist["torque_limits"][0]
    with RosProbe() as probe:
        envelope = probe.subscribe(SignalChunk, "/emg/envelope")
        states = probe.subscribe(AssistState, "/assist/state")
        commands = probe.subscribe(Float64MultiArray, "/exo/commands")
        exo = probe.subscribe(JointState, "/exo/joint_states")
        graph = start_graph("exo_demo")
        try:
            # Disabled: zero commands while every input flows.
            ready = probe.wait_until(
                lambda: states and states[-1][1].reason == "" and len(exo) > 50, timeout=90)
            assert ready, states[-1][1] if states else "no assist/state"
            assert not any(any(c.data) for _, c in list(commands))
            # Enabled with the command-line tool (no ros2cli here). The replay loops: the pose
            # jumps from the recording's last frame to its first (the IK filter restarts),
            # which faults; enable again until a stretch is assisted.
            deadline = time.monotonic() + 60
            tool = enable_with_tool()
            while tool.returncode != 0 and time.monotonic() < deadline:
                assert tool.returncode == 1 and "not enabled" in tool.stdout, tool
                time.sleep(0.5)
                tool = enable_with_tool()
            assert tool.returncode == 0 and tool.stdout.startswith("/assist/enable: enabled"), tool
            t0 = time.time()
            assisted = probe.wait_until(lambda: sum(
                1 for t, s in list(states) if t >= t0 and s.state == "enabled"
                and abs(s.command[0]) > 0.1) >= 50, timeout=30)
            moved = [m.position[0] for t, m in list(exo) if t >= t0]
            off = enable_with_tool("--off")
            assert off.returncode == 0 and "disabled" in off.stdout, off
            assert probe.wait_until(lambda: states[-1][1].state == "disabled"
                                    and not any(states[-1][1].command))
        finally:
            graph.send_signal(signal.SIGINT)
            output, _ = graph.communicate(timeout=60)
    assert assisted, output[-3000:]
    assert graph.returncode == 0, output[-3000:]
    # The envelope of the exo config: 6 Hz low-pass, one sample per 10 ms, in volts.
    last = envelope[-1][1]
    assert last.sample_count == 1 and last.sample_rate == 100.0 and last.unit == "V"
    enabled = [s for t, s in list(states) if t >= t0 and s.state == "enabled"]
    gravity = np.array([s.gravity_torque[0] for s in enabled])
    assert (gravity > 0).all()  # half of the Wu model's elbow gravity torque, abducted arm
    values = np.array([c.data[0] for t, c in list(commands)])
    assert np.isfinite(values).all() and np.abs(values).max() <= limit
    assert np.ptp(moved) > 0.01  # the simulated elbow moved under the command
