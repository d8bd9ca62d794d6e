"""The tier guard (tiers.py): a fast-tier test cannot start a process or an rclpy context;
an integration test can."""
import multiprocessing
import os
import pickle
import subprocess
import sys

import pytest
import rclpy

from tiers import FastTierViolation


@pytest.mark.parametrize("start", [
    lambda: subprocess.run([sys.executable, "-c", "pass"]),
    lambda: subprocess.check_output(["true"]),
    lambda: os.system("true"),
    lambda: os.fork(),
    lambda: multiprocessing.get_context("spawn").Process(target=print).start(),
    lambda: rclpy.init(context=rclpy.Context()),
    lambda: rclpy.Context().init(),
], ids=["subprocess.run", "check_output", "os.system", "os.fork", "multiprocessing", "rclpy.init",
        "Context.init"])
def test_a_fast_test_cannot_start_a_process_or_dds(start):
    with pytest.raises(FastTierViolation, match="test_tiers.py.*pytest.mark.integration"):
        start()


def test_the_guarded_functions_still_pickle_by_name():
    assert pickle.loads(pickle.dumps(os.system)) is os.system


@pytest.mark.integration
def test_an_integration_test_starts_processes():
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
