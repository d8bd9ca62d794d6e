"""Test session set-up: an isolated ROS 2 domain on loopback for every run, and the two tiers
(tiers.py): `--fast` (or BIOSIG_ROS_TEST_TIER=fast) runs the in-process tests only."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PYTHONUNBUFFERED", "1")

from ros_harness import isolate_ros_graph  # noqa: E402
from tiers import fast_only, fast_tier_guard, in_fast_tier, is_integration  # noqa: E402

# Parallel runs (or a lab's live graph) never see each other's topics.
isolate_ros_graph()


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="the fast tier only: in-process tests, no process, no DDS, "
                          "no slow soak (test/tiers.py)")


def pytest_collection_modifyitems(config, items):
    if not fast_only(config):
        return
    deselected = [item for item in items if not in_fast_tier(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if in_fast_tier(item)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Fast-tier tests (and their fixtures) run under the guard in every run, the whole
    suite included: one that starts a process or DDS fails there, not only under --fast."""
    if is_integration(item):
        yield
        return
    with fast_tier_guard(item.nodeid):
        yield
