"""The parallel run's settings (parallel.py): worker count of `-n auto`, file order."""
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import parallel
from parallel import (ALONE, GRAPHS, LONGEST, WORKERS_ENVIRONMENT, WORKERS_FAST_TIER,
                      WORKERS_WHOLE_SUITE, is_alone, longest_first, run_slot, scope_of,
                      worker_count)
from ros_harness import wait_until


def config(*args):
    return SimpleNamespace(args=list(args))


def test_the_default_worker_count_depends_on_the_tier(monkeypatch):
    monkeypatch.delenv(WORKERS_ENVIRONMENT, raising=False)
    assert worker_count(config("test"), fast=False) == WORKERS_WHOLE_SUITE
    assert worker_count(config("test"), fast=True) == WORKERS_FAST_TIER
    assert worker_count(config(), fast=False) == WORKERS_WHOLE_SUITE  # testpaths


def test_one_file_runs_in_the_pytest_process(monkeypatch):
    monkeypatch.delenv(WORKERS_ENVIRONMENT, raising=False)
    assert worker_count(config("test/test_graph.py"), fast=False) == 0
    assert worker_count(config("test/test_graph.py::test_a", "test/test_graph.py::test_b"),
                        fast=False) == 0
    assert worker_count(config("test/test_graph.py", "test/test_tiers.py"), fast=False) == \
        WORKERS_WHOLE_SUITE


def test_the_environment_sets_the_count_and_a_wrong_value_says_so(monkeypatch):
    monkeypatch.setenv(WORKERS_ENVIRONMENT, "6")
    assert worker_count(config("test/test_graph.py"), fast=True) == 6
    monkeypatch.setenv(WORKERS_ENVIRONMENT, "0")
    assert worker_count(config("test"), fast=False) == 0
    monkeypatch.setenv(WORKERS_ENVIRONMENT, "many")
    with pytest.raises(ValueError, match=f"{WORKERS_ENVIRONMENT}='many': expected a number"):
        worker_count(config("test"), fast=False)


def test_the_longest_files_come_first_and_the_rest_keep_their_order(monkeypatch):
    monkeypatch.setattr(parallel, "LONGEST", ("test_longest.py", "test_long.py"))
    monkeypatch.setattr(parallel, "GRAPHS", frozenset({"test_graph_b.py", "test_graph_a.py"}))

    def item(name, test):
        return SimpleNamespace(path=Path("test") / name, name=test)

    items = [item("test_a.py", "1"), item("test_long.py", "x"), item("test_b.py", "2"),
             item("test_graph_a.py", "g"), item("test_longest.py", "y"), item("test_a.py", "3"),
             item("test_long.py", "z"), item("test_graph_b.py", "h")]
    assert [(i.path.name, i.name) for i in longest_first(items)] == [
        ("test_graph_a.py", "g"), ("test_graph_b.py", "h"),
        ("test_longest.py", "y"), ("test_long.py", "x"), ("test_long.py", "z"),
        ("test_a.py", "1"), ("test_b.py", "2"), ("test_a.py", "3")]


def test_a_file_is_one_unit_of_work_and_the_graph_files_are_one_together():
    graph_file = sorted(GRAPHS)[0]
    assert scope_of(f"test/{graph_file}::test_x[1]") == scope_of(
        f"test/{sorted(GRAPHS)[-1]}::test_y") == "graphs"
    assert scope_of("test/test_tiers.py::test_a[x::y]") == "test/test_tiers.py"
    assert scope_of("test/test_tiers.py") == "test/test_tiers.py"


def test_every_file_that_runs_a_graph_or_a_browser_is_among_the_graph_files():
    """A new test file starting graphs runs beside the other graphs only once listed."""
    exiting_at_once = {"test_start_values.py"}  # graphs refused at start: no streaming
    this = Path(__file__).name
    starts = re.compile(r"\b(GraphProcess|start_graph|Browser)\(|BUSY_LOOP")
    running = {p.name for p in Path(__file__).parent.glob("test_*.py")
               if p.name != this and starts.search(p.read_text(encoding="utf-8"))}
    assert running - exiting_at_once <= GRAPHS, sorted(running - exiting_at_once - GRAPHS)


def test_the_named_files_exist():
    names = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    assert set(LONGEST) <= names and GRAPHS <= names and not GRAPHS & set(LONGEST)


def test_this_process_holds_its_own_ros_domain():
    """Every process that loads conftest.py (the controller, each xdist worker) claims a
    domain: the lock file of its ROS_DOMAIN_ID is held (another process cannot take it)."""
    import fcntl
    domain = int(os.environ["ROS_DOMAIN_ID"])
    assert 1 <= domain <= 100
    with open(f"/tmp/biosig_ros-ros-domain-{domain}.lock", "w") as other:
        # a second open file description: flock on it conflicts with the held lock
        with pytest.raises(OSError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_ros_home_is_this_runs_own(ros_home_of_this_run, tmp_path_factory):
    """Recordings and ROS logs of the graphs a test starts go to this worker's temporary
    directory, not ~/.ros shared with parallel workers and other runs."""
    assert os.environ["ROS_HOME"] == str(ros_home_of_this_run)
    assert ros_home_of_this_run.parent == tmp_path_factory.getbasetemp()


def test_a_test_run_alone_waits_for_the_running_ones_and_holds_back_the_next(tmp_path):
    """run_slot across threads (flock: each open file is its own lock holder, as a worker is)."""
    import threading

    environment = {parallel.SLOTS_ENVIRONMENT: str(tmp_path)}
    events = []
    shared_in, shared_may_leave, alone_in, alone_may_leave = (threading.Event() for _ in "1234")

    def shared(may_leave, name):
        with run_slot(False, environment):
            events.append(name)
            shared_in.set()
            assert may_leave.wait(60)

    def alone():
        with run_slot(True, environment):
            events.append("alone")
            alone_in.set()
            assert alone_may_leave.wait(60)

    first = threading.Thread(target=shared, args=(shared_may_leave, "first"))
    first.start()
    assert shared_in.wait(60)
    lone = threading.Thread(target=alone)
    lone.start()
    assert not alone_in.wait(0.5)            # a test running: the lone one waits
    later_may_leave = threading.Event()
    later = threading.Thread(target=shared, args=(later_may_leave, "later"))
    later.start()
    assert not wait_until(lambda: "later" in events, 0.5)  # nor does a test started after it
    shared_may_leave.set()
    assert alone_in.wait(60)
    assert events == ["first", "alone"]      # the later one did not pass it
    alone_may_leave.set()
    later_may_leave.set()
    for thread in (first, lone, later):
        thread.join(60)
    assert events == ["first", "alone", "later"]


def test_a_series_of_lone_tests_keeps_the_others_out_between_them(tmp_path):
    """keep: the exclusive lock passes to the worker's next test of ALONE; a test of another
    worker waiting meanwhile runs after the series, not between (draining the others once)."""
    import threading

    environment = {parallel.SLOTS_ENVIRONMENT: str(tmp_path)}
    events = []
    with run_slot(True, environment, keep=True):
        events.append("alone 1")

    def shared():
        with run_slot(False, environment):
            events.append("shared")
    other = threading.Thread(target=shared)
    other.start()
    assert not wait_until(lambda: "shared" in events, 0.5)  # the lock was kept
    with run_slot(True, environment):                        # taken over, not waited for
        events.append("alone 2")
    other.join(60)
    assert events == ["alone 1", "alone 2", "shared"]
    assert not parallel._held_alone


def test_without_the_runs_directory_a_slot_is_free(tmp_path):
    with run_slot(True, {}), run_slot(True, {parallel.SLOTS_ENVIRONMENT: str(tmp_path / "no")}):
        pass


def test_the_tests_run_alone_are_named_by_file_or_by_test():
    def item(name, test):
        return SimpleNamespace(path=Path("test") / name, originalname=test)

    assert is_alone(item("test_exo_demo.py", "anything"))
    assert is_alone(item("test_ik_node.py", "test_joint_states_from_markers_of_another_process"))
    assert not is_alone(item("test_ik_node.py", "test_replay_node_feeds_ik_node"))
    names = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    assert {entry.split("::")[0] for entry in ALONE} <= names


def test_a_test_of_alone_runs_first_where_allowed_and_alone_otherwise(monkeypatch):
    def item(name, test="t"):
        return SimpleNamespace(path=Path("test") / name, originalname=test)

    assert parallel.slot_mode(item("test_emg_node.py")) == parallel.SHARED
    monkeypatch.setattr(parallel, "can_run_first", lambda: True)
    assert parallel.slot_mode(item("test_exo_demo.py")) == parallel.FIRST
    assert parallel.slot_mode(item("test_bridge_record_under_load.py")) == parallel.EXCLUSIVE_SLOT
    monkeypatch.setattr(parallel, "can_run_first", lambda: False)
    assert parallel.slot_mode(item("test_exo_demo.py")) == parallel.EXCLUSIVE_SLOT
    assert parallel.EXCLUSIVE <= ALONE


def test_tests_run_first_one_at_a_time_ahead_of_the_others(tmp_path):
    """run_first across threads: the nice value of the thread inside, restored after; a second
    one waits for the first (nice is per thread on Linux, as the workers' main threads are)."""
    import threading

    if not parallel.can_run_first():
        pytest.skip("this process may not lower its nice value (not root, no CAP_SYS_NICE)")
    environment = {parallel.SLOTS_ENVIRONMENT: str(tmp_path)}
    events, inside, may_leave = [], threading.Event(), threading.Event()

    def first(name):
        before = os.getpriority(os.PRIO_PROCESS, 0)
        with parallel.run_first(True, environment):
            events.append((name, before - os.getpriority(os.PRIO_PROCESS, 0)))
            inside.set()
            assert may_leave.wait(60)
        events.append((name, before - os.getpriority(os.PRIO_PROCESS, 0)))

    one = threading.Thread(target=first, args=("one",))
    one.start()
    assert inside.wait(60)
    two = threading.Thread(target=first, args=("two",))
    two.start()
    assert not wait_until(lambda: len(events) > 1, 0.5)  # the second waits
    may_leave.set()
    for thread in (one, two):
        thread.join(60)
    # ("one", 0) is noted after its lock is let go: it may follow ("two", 10).
    assert events[0] == ("one", parallel.FIRST_NICE_STEP)
    assert sorted(events) == [("one", 0), ("one", parallel.FIRST_NICE_STEP), ("two", 0),
                              ("two", parallel.FIRST_NICE_STEP)]
    assert events.index(("two", parallel.FIRST_NICE_STEP)) < events.index(("two", 0))
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    with parallel.run_first(False, environment), parallel.run_first(True, {}):
        assert os.getpriority(os.PRIO_PROCESS, 0) == nice  # inactive, or no parallel run


def test_every_process_of_the_run_shares_its_slots_directory():
    """Set by the pytest process that starts the workers, inherited by them."""
    directory = Path(os.environ[parallel.SLOTS_ENVIRONMENT])
    assert directory.is_dir() and directory.name.startswith("biosig_ros-test-slots-")


def test_a_running_test_holds_its_slot():
    """conftest.py wraps every test in run_slot: while this one runs, no test of ALONE can."""
    import fcntl
    with open(Path(os.environ[parallel.SLOTS_ENVIRONMENT]) / "slots", "a") as slots:
        with pytest.raises(OSError):
            fcntl.flock(slots, fcntl.LOCK_EX | fcntl.LOCK_NB)
