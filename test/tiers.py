"""The two test tiers and the guard that keeps them apart (docs/testing.md, "Tiers").

fast         the default: in-process only. No child process, no DDS participant (rclpy
             context); `tools/run test --fast` and `colcon test` run this tier alone.
integration  tests marked `pytest.mark.integration` (the module's `pytestmark` or one test):
             node processes, whole graphs, DDS, command-line tools, a browser, pip.
slow         in-process but tens of seconds (memory soaks): `pytest.mark.slow`, left out of
             the fast run, still under the guard.

Every test not marked integration runs under `fast_tier_guard`, in the whole suite as in the
fast run: one that starts a process or an rclpy context fails at once, naming the mark it
needs. So the fast tier cannot start needing processes or DDS unnoticed.
"""
from __future__ import annotations

import _posixsubprocess
import os
import subprocess
import types
from contextlib import contextmanager

import pytest

MARK = "integration"
SLOW = "slow"
FAST_ENVIRONMENT = "BIOSIG_ROS_TEST_TIER"  # =fast: the fast tier only (colcon test sets it)


class FastTierViolation(RuntimeError):
    """A test of the fast tier started a process or a DDS participant."""


def fast_only(config) -> bool:
    return config.getoption("fast") or os.environ.get(FAST_ENVIRONMENT, "") == "fast"


def is_integration(item) -> bool:
    return item.get_closest_marker(MARK) is not None


def in_fast_tier(item) -> bool:
    return not is_integration(item) and item.get_closest_marker(SLOW) is None


def _refuse(test: str, what: str, owner, name: str):
    def refused(*_args, **_kwargs):
        raise FastTierViolation(
            f"{test} {what}: a fast-tier test runs in-process only. Mark it (or its module, "
            f"`pytestmark = pytest.mark.{MARK}`) if it needs processes or DDS")
    # named as what it replaces, so that pickling it (the hostile-pickle tests pickle
    # os.system) still stores a reference by name, as with the original
    refused.__name__ = name
    if isinstance(owner, types.ModuleType):
        refused.__module__, refused.__qualname__ = owner.__name__, name
    else:
        refused.__module__, refused.__qualname__ = owner.__module__, f"{owner.__qualname__}.{name}"
    return refused


def _process_entry_points():
    """Every way Python starts a process: subprocess (all of its helpers), os.system/popen,
    fork/exec/spawn, and multiprocessing (fork, or fork_exec for spawn/forkserver)."""
    yield subprocess.Popen, "_execute_child", "started a process (subprocess)"
    yield _posixsubprocess, "fork_exec", "started a process (fork_exec)"
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp",
                 "execv", "execve", "execvp", "execvpe", "spawnv", "spawnve"):
        if hasattr(os, name):
            yield os, name, f"called os.{name}"


def _dds_entry_points():
    """rclpy's one door to DDS: initialising a context (rclpy.init goes through it too)."""
    try:
        from rclpy.context import Context
    except ImportError:  # a fast run without ROS 2 installed has nothing to guard
        return
    yield Context, "init", "initialised an rclpy context (DDS)"


@contextmanager
def fast_tier_guard(test: str):
    patch = pytest.MonkeyPatch()
    try:
        for owner, name, what in [*_process_entry_points(), *_dds_entry_points()]:
            patch.setattr(owner, name, _refuse(test, what, owner, name))
        yield
    finally:
        patch.undo()
