"""Lowering an observer's CPU priority, so that on a busy machine the nodes a robot depends on
(IK, assist) wake first: an observer's report can wait a few milliseconds, a command cannot."""
from __future__ import annotations

import os
import sys

# A Python thread waiting for the interpreter lock gets it after at most the switch interval
# (5 ms by default): with two threads (executor and a worker) that is a latency floor.
GIL_SWITCH_INTERVAL_S = 0.0005


def lower_priority(niceness: int) -> tuple[bool, str]:
    """Add `niceness` to the nice value of every thread of this process (Linux applies a nice
    value per thread: the middleware's threads already run). Returns (done, what to log);
    (True, "") when nothing was asked."""
    if niceness <= 0:
        return True, ""
    tasks = "/proc/self/task"
    threads = [int(tid) for tid in os.listdir(tasks)] if os.path.isdir(tasks) else [0]
    try:
        for thread in threads:
            now = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(now + niceness, 19))
    except ProcessLookupError:
        pass  # a thread that ended meanwhile
    except (OSError, AttributeError) as error:
        return False, f"could not lower this process's priority ({error})"
    return True, f"nice {os.getpriority(os.PRIO_PROCESS, 0)}: yields the CPU to the nodes a robot uses"


def prompt_thread_switches() -> None:
    """A thread waiting for the interpreter lock gets it within 0.5 ms instead of 5 ms: a
    node's worker that has something to publish (IK's solver, the replay's pacer, the bridge's
    server, a device's reader) while the executor runs Python, or the reverse. The cost: more
    frequent switches when two threads both compute (a few microseconds each)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
