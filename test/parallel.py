"""Parallel runs with pytest-xdist (docs/testing.md, "Parallel runs").

pytest.ini runs `-n auto --dist loadfile`, with the scheduler below: every test file goes whole
to one worker (a module's shared fixtures, such as the live view's demo graph, start once),
and the files that run whole graphs (GRAPHS: a demo graph alone takes about a core) go to one
worker together, one after the other, so that two graphs never starve each other and the node
tests beside them of the machine's 2 CPUs. The files are handed out longest first (GRAPHS
first) so that no long file starts last. Most of the other tests' time is waiting (process
start-up, DDS discovery, timeouts), not CPU, so more workers than CPUs pay.

`-n auto` means BIOSIG_ROS_TEST_WORKERS workers when set, otherwise the defaults below; one
test file alone (or a `file::test`) runs in this process, as `-n 0` does.
"""
from __future__ import annotations

import fcntl
import functools
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

WORKERS_ENVIRONMENT = "BIOSIG_ROS_TEST_WORKERS"
# Chosen on the 2-CPU machine (docs/testing.md, "Measured"): the whole suite's graphs in one
# worker and the rest in two; the fast tier is CPU-bound in part, and every worker collects
# the suite again (about 4 s of CPU each).
WORKERS_WHOLE_SUITE = 3
WORKERS_FAST_TIER = 3

# Files that run whole graphs, Chromium or busy loops: one worker runs them one after another.
GRAPHS = frozenset({
    "test_assist_muscle_torque.py", "test_bridge_record_under_load.py", "test_exo_demo.py",
    "test_framing.py", "test_graph.py", "test_ik_continuity_node.py", "test_lab_recordings.py",
    "test_live_view_browser.py", "test_live_view_torques_browser.py", "test_mcap_demo.py",
    "test_namespaces.py", "test_onboarding.py", "test_panel_gui.py", "test_qos_outputs.py",
    "test_shared_memory.py", "test_sim_time.py", "test_supervision.py",
    "test_torque_chain.py",  # replay -> emg_processing -> ik -> torque_node: a graph's load
})

# Tests that need the machine: the assist chain refuses inputs older than 100 ms, which a
# graph starved by the run's other workers exceeds; the graph at 2x speed takes most of the 2
# CPUs; the bridge's recording under CPU load starts its own busy loops. A file name, or
# file::test. Where the worker may raise its priority (root, or CAP_SYS_NICE), such a test runs
# FIRST_NICE_STEP nice steps ahead of the others (its processes inherit it; one such test at a
# time), and the others go on beside it with what CPU it leaves; otherwise, and always for
# EXCLUSIVE, it runs with no other test beside it (the others wait at their next test).
ALONE = frozenset({
    "test_exo_demo.py", "test_assist_muscle_torque.py", "test_bridge_record_under_load.py",
    "test_panel_gui.py::test_exo_demo_in_a_namespace",
    "test_ik_node.py::test_joint_states_from_markers_of_another_process",
    "test_sim_time.py::test_rates_per_simulated_second_at_double_speed",
})
EXCLUSIVE = frozenset({"test_bridge_record_under_load.py"})  # its busy loops would inherit it
FIRST_NICE_STEP = 10  # CFS weights 9548 against 1024: about 90 % of the CPU when contended
SLOTS_ENVIRONMENT = "BIOSIG_ROS_TEST_SLOTS"  # the run's lock files, shared with its workers

# The longest files (the whole suite's --durations, docs/testing.md), in that order; every
# other file follows in collection order.
LONGEST = (
    "test_ik_memory.py", "test_bio_check.py", "test_assist_node.py", "test_ik_node.py",
    "test_pip_mcap.py", "test_assist_controller.py", "test_ik_continuity.py", "test_emg_node.py",
    "test_bridge_node.py", "test_parameters_across_processes.py", "test_ik_outputs.py",
    "test_live_view_node.py", "test_emg_biosiglive_compat.py", "test_shell_path.py",
    "test_ik_solver.py", "test_pip_core.py", "test_bridge_abuse.py", "test_device_lifecycle.py",
    "test_trigno_client.py",
)


def worker_count(config, fast: bool) -> int:
    given = os.environ.get(WORKERS_ENVIRONMENT, "").strip()
    if given:
        try:
            return max(0, int(given))
        except ValueError:
            raise ValueError(f"{WORKERS_ENVIRONMENT}={given!r}: expected a number of workers "
                             "(0 = no worker, the tests run in the pytest process)") from None
    if _one_file(config.args):
        return 0
    return WORKERS_FAST_TIER if fast else WORKERS_WHOLE_SUITE


def _one_file(args: list[str]) -> bool:
    """Whether the command line names a single test file (whole, or some of its tests)."""
    files = {arg.split("::", 1)[0] for arg in args}
    return len(files) == 1 and next(iter(files)).endswith(".py")


def longest_first(items: list) -> list:
    """The items of GRAPHS' files first, then those of LONGEST's, then the others (a stable
    sort: the order within a file and among the other files is kept). Every worker sorts its
    collection the same way (xdist checks that they agree)."""
    rank = {name: place for place, name in enumerate(LONGEST)}

    def place(item) -> int:
        name = Path(str(item.path)).name
        return -1 if name in GRAPHS else rank.get(name, len(rank))
    return sorted(items, key=place)


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or one unit for every file of GRAPHS."""
    path = nodeid.split("::", 1)[0]
    return "graphs" if Path(path).name in GRAPHS else path


def file_scheduler(config, log):
    """pytest-xdist's `loadfile` scheduler with the files of GRAPHS as one unit of work."""
    from xdist.scheduler import LoadFileScheduling

    class FileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)
    return FileScheduling(config, log)


def is_alone(item) -> bool:
    name = Path(str(item.path)).name
    return name in ALONE or f"{name}::{item.originalname}" in ALONE


SHARED, FIRST, EXCLUSIVE_SLOT = "shared", "first", "exclusive"


def slot_mode(item) -> str:
    """SHARED (most tests), FIRST (ALONE, run ahead of the others) or EXCLUSIVE_SLOT (ALONE
    where this worker may not raise its priority, and EXCLUSIVE)."""
    if not is_alone(item):
        return SHARED
    if Path(str(item.path)).name in EXCLUSIVE or not can_run_first():
        return EXCLUSIVE_SLOT
    return FIRST


@functools.cache
def can_run_first() -> bool:
    """Whether this process may lower its nice value (tried and undone)."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice - FIRST_NICE_STEP)
    except PermissionError:
        return False
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    return True


@contextmanager
def run_first(active: bool, environment=os.environ):
    """While a FIRST test runs (active): the run's 'first' lock (one such test at a time), and
    this thread FIRST_NICE_STEP nice steps ahead (Linux nice is per thread; the processes and
    threads the test starts inherit it). Taken inside the shared slot, never the other way
    round (an exclusive test waits for the shared slots: no cycle)."""
    directory = environment.get(SLOTS_ENVIRONMENT)
    if not active or not directory or not os.path.isdir(directory):
        yield
        return
    with open(os.path.join(directory, "first"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, nice - FIRST_NICE_STEP)
        try:
            yield
        finally:
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def open_slots(environment=os.environ) -> str | None:
    """In the pytest process that starts the workers (not in a worker): a directory for the
    run's lock files, passed on to the workers in the environment. Returns it (None in a
    worker)."""
    if "PYTEST_XDIST_WORKER" in environment:
        return None
    directory = tempfile.mkdtemp(prefix="biosig_ros-test-slots-")
    environment[SLOTS_ENVIRONMENT] = directory
    return directory


def close_slots(directory: str | None) -> None:
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


_held_alone: list = []  # this worker's exclusive lock, kept for its next test of ALONE


@contextmanager
def run_slot(alone: bool, environment=os.environ, keep: bool = False):
    """Hold the run's slot lock while a test runs: shared for most tests, exclusive for those of
    ALONE. A turnstile in front keeps the exclusive one from waiting forever behind a stream
    of shared ones: once it waits, no new test starts until it has run. keep (an ALONE test
    whose next test in this worker is one too): the exclusive lock is kept for that one, so
    the other workers are drained once for a series of them, not before each."""
    directory = environment.get(SLOTS_ENVIRONMENT)
    if not directory or not os.path.isdir(directory):
        yield
        return
    held = _held_alone.pop() if (alone and _held_alone) else _acquire(directory, alone)
    try:
        yield
    finally:
        if alone and keep:
            _held_alone.append(held)
        else:
            for lock in held:
                lock.close()  # closing the file releases its lock


def _acquire(directory: str, alone: bool) -> list:
    """The open lock files a test holds: the slots' (shared or exclusive), and for an
    exclusive one the turnstile as well."""
    turnstile = open(os.path.join(directory, "turnstile"), "a")
    slots = open(os.path.join(directory, "slots"), "a")
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    try:
        fcntl.flock(slots, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    except BaseException:
        turnstile.close()
        slots.close()
        raise
    if alone:
        return [turnstile, slots]
    turnstile.close()
    return [slots]
