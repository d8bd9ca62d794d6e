"""lower_priority: every thread of the process gets the added nice value (in a process of its
own: lowering the test runner's priority would slow the rest of the run)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os, threading
from biosig_ros.ros.process_priority import lower_priority
assert lower_priority(0) == (True, "")
started, stop, seen = threading.Event(), threading.Event(), {}
def other():
    seen["tid"] = threading.get_native_id(); started.set(); stop.wait(5)
thread = threading.Thread(target=other); thread.start(); started.wait(5)
before = [os.getpriority(os.PRIO_PROCESS, t) for t in (0, seen["tid"])]
lowered, text = lower_priority(3)
after = [os.getpriority(os.PRIO_PROCESS, t) for t in (0, seen["tid"])]
stop.set(); thread.join()
print(json.dumps([before, after, lowered, text]))
"""


def test_every_thread_is_lowered_and_zero_changes_nothing():
    output = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    before, after, lowered, text = json.loads(output)
    assert after == [min(v + 3, 19) for v in before] and lowered, output
    assert text.startswith(f"nice {after[0]}"), output


def realtime_allowed() -> bool:
    """Whether this machine lets a process take SCHED_FIFO (CAP_SYS_NICE or an rtprio limit)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def test_a_node_given_realtime_priority_runs_every_thread_at_it_or_says_why_not():
    from ros_harness import NodeProcess, RosProbe, shipped_parameters

    from biosig_ros.msg import MarkerSet

    params = shipped_parameters("replay_abd.yaml", realtime_priority=7, wait_for_nodes=[],
                                wait_for_subscribers=0, loop=True)
    with RosProbe() as probe, NodeProcess("biosig_ros.nodes.replay_node", "replay",
                                          params) as node:
        frames = probe.subscribe(MarkerSet, "/markers")
        assert node.wait_for_output("replay", 30), node.output()
        if not realtime_allowed():
            assert node.wait_for_output("realtime_priority 7 refused by the system", 30), (
                node.output())
            return
        assert node.wait_for_output("real-time priority 7 (SCHED_FIFO)", 30), node.output()
        # the pacer thread, started after the node took its priority, has it too
        assert probe.wait_until(lambda: frames, timeout=30), node.output()
        tasks = Path(f"/proc/{node.process.pid}/task")
        policies = {(tid.name, os.sched_getscheduler(int(tid.name)),
                     os.sched_getparam(int(tid.name)).sched_priority)
                    for tid in tasks.iterdir()}
        assert {(p, priority) for _, p, priority in policies} == {(os.SCHED_FIFO, 7)}, policies

