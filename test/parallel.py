"""Parallel runs with pytest-xdist (docs/testing.md, "Parallel runs").

pytest.ini runs `-n auto --dist loadfile`: every test file goes whole to one worker (a module's
shared fixtures, such as the live view's demo graph, start once), and the files are handed
out longest first so that no long file starts last. Most of the suite's time is waiting
(process start-up, DDS discovery, timeouts), not CPU, so more workers than CPUs pay.

`-n auto` means BIOSIG_ROS_TEST_WORKERS workers when set, otherwise the defaults below; one
test file alone (or a `file::test`) runs in this process, as `-n 0` does.
"""
from __future__ import annotations

import os
from pathlib import Path

WORKERS_ENVIRONMENT = "BIOSIG_ROS_TEST_WORKERS"
# Chosen on the 2-CPU machine (docs/testing.md, "Measured"): the whole suite mostly waits on
# processes and DDS; the fast tier is more CPU-bound and every worker imports the suite again.
WORKERS_WHOLE_SUITE = 4
WORKERS_FAST_TIER = 3

# The longest files (the whole suite's --durations, docs/testing.md), in that order; every
# other file follows in collection order.
LONGEST = (
    "test_ik_memory.py", "test_live_view_browser.py", "test_ik_node.py",
    "test_parameters_across_processes.py", "test_supervision.py", "test_ik_outputs.py",
    "test_assist_controller.py", "test_emg_node.py", "test_ik_continuity_node.py",
    "test_sim_time.py", "test_device_lifecycle.py", "test_bio_check.py", "test_pip_mcap.py",
    "test_emg_biosiglive_compat.py", "test_trigno_client.py", "test_ik_solver.py",
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
    """The items with the files of LONGEST first (a stable sort: the order within a file and
    among the other files is kept). Every worker sorts its collection the same way."""
    rank = {name: place for place, name in enumerate(LONGEST)}
    return sorted(items, key=lambda item: rank.get(Path(str(item.path)).name, len(rank)))
