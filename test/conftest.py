"""Test session set-up: an isolated ROS 2 domain on loopback for every run (every pytest-xdist
worker claims its own), the two tiers (tiers.py): `--fast` (or BIOSIG_ROS_TEST_TIER=fast) runs
the in-process tests only, and the parallel run's worker count and file order (docs/testing.md,
"Parallel runs")."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PYTHONUNBUFFERED", "1")

from ros_harness import isolate_ros_graph  # noqa: E402
from parallel import (EXCLUSIVE_SLOT, FIRST, close_slots, file_scheduler,  # noqa: E402
                      longest_first, open_slots, run_first, run_slot, slot_mode, worker_count)
from tiers import fast_only, fast_tier_guard, in_fast_tier, is_integration  # noqa: E402

# Parallel runs and their workers (or a lab's live graph) never see each other's topics: each
# process importing this (the pytest-xdist controller, every worker) claims a domain of its own.
isolate_ros_graph()
# The lock files through which a test of parallel.ALONE runs first or alone.
_SLOTS = open_slots()


def pytest_unconfigure(config):
    close_slots(_SLOTS)


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="the fast tier only: in-process tests, no process, no DDS, "
                          "no slow soak (test/tiers.py)")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """The number of workers of `-n auto` (pytest.ini's default; parallel.py)."""
    return worker_count(config, fast_only(config))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (pytest.ini's default): whole files, the graph files together."""
    if config.getvalue("dist") == "loadfile":
        return file_scheduler(config, log)
    return None


def pytest_collection_modifyitems(config, items):
    if fast_only(config):
        deselected = [item for item in items if not in_fast_tier(item)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if in_fast_tier(item)]
    items[:] = longest_first(items)


@pytest.fixture(scope="session", autouse=True)
def ros_home_of_this_run(tmp_path_factory):
    """$ROS_HOME (ROS logs, the recorders' default directory) in this run's temporary
    directory, one per worker: graphs started in parallel at the same second would otherwise
    pick the same timestamped recording name in ~/.ros, and tests leave nothing there."""
    path = tmp_path_factory.mktemp("ros_home")
    patch = pytest.MonkeyPatch()
    patch.setenv("ROS_HOME", str(path))
    yield path
    patch.undo()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Fast-tier tests (and their fixtures) run under the guard in every run, the whole
    suite included: one that starts a process or DDS fails there, not only under --fast.
    Every test holds its slot of the parallel run (parallel.run_slot)."""
    mode = slot_mode(item)
    keep = nextitem is not None and slot_mode(nextitem) == EXCLUSIVE_SLOT
    with run_slot(mode == EXCLUSIVE_SLOT, keep=keep), run_first(mode == FIRST):
        if is_integration(item):
            yield
            return
        with fast_tier_guard(item.nodeid):
            yield
