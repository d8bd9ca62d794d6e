"""CPU priorities: an observer lowers its own, so that on a busy machine the nodes a robot
depends on (IK, assist) wake first (an observer's report can wait a few milliseconds, a command
cannot); those nodes may take a real-time priority where the system allows it."""
from __future__ import annotations

import os
import sys

# A Python thread waiting for the interpreter lock gets it after at most the switch interval
# (5 ms by default): with two threads (executor and a worker) that is a latency floor.
GIL_SWITCH_INTERVAL_S = 0.0005


def lower_priority(niceness: int) -> tuple[bool, str]:
    """Add `niceness` to the nice value of every thread of this process. Returns (done, what
    to log); (True, "") when nothing was asked."""
    if niceness <= 0:
        return True, ""

    def lower(thread: int) -> None:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(now + niceness, 19))
    try:
        _each_thread(lower)
    except (OSError, AttributeError) as error:
        return False, f"could not lower this process's priority ({error})"
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    return True, f"nice {nice}: yields the CPU to the nodes a robot uses"


def take_realtime_priority(priority: int) -> tuple[bool, str]:
    """SCHED_FIFO at `priority` (1-99) for every thread of this process, and so for the threads
    they start from now on (a new thread inherits its creator's policy). Returns (done, what to
    log); (True, "") when nothing was asked. Refused (no CAP_SYS_NICE, no rtprio limit): the
    process keeps normal scheduling and the reason is returned."""
    if priority <= 0:
        return True, ""
    try:
        _each_thread(lambda thread: os.sched_setscheduler(thread, os.SCHED_FIFO,
                                                          os.sched_param(priority)))
    except PermissionError:
        return False, (f"realtime_priority {priority} refused by the system (needs CAP_SYS_NICE "
                       "or an rtprio limit, docs/robot_integration.md): normal scheduling")
    except (OSError, AttributeError) as error:
        return False, f"realtime_priority {priority} not applied ({error}): normal scheduling"
    return True, f"real-time priority {priority} (SCHED_FIFO) for every thread"


def _each_thread(apply) -> None:
    """apply(thread id) for every thread of this process (Linux applies nice values and
    scheduling policies per thread: the middleware's threads already run)."""
    tasks = "/proc/self/task"
    for thread in [int(tid) for tid in os.listdir(tasks)] if os.path.isdir(tasks) else [0]:
        try:
            apply(thread)
        except ProcessLookupError:
            pass  # a thread that ended meanwhile


def prompt_thread_switches() -> None:
    """A thread waiting for the interpreter lock gets it within 0.5 ms instead of 5 ms: a
    node's worker that has something to publish (IK's solver, the replay's pacer, the bridge's
    server, a device's reader) while the executor runs Python, or the reverse. The cost: more
    frequent switches when two threads both compute (a few microseconds each)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def apply_priorities(node, realtime_priority: int = 0, niceness: int = 0) -> None:
    """Take the node's `realtime_priority` or lower it by `niceness`, and log what was done
    (a refusal as a warning: the node runs on, at normal priority)."""
    for done, text in (take_realtime_priority(realtime_priority), lower_priority(niceness)):
        if text:
            (node.get_logger().info if done else node.get_logger().warning)(text)
