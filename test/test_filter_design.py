"""Butterworth designs from the disk cache: scipy's coefficients bit for bit, without importing
scipy.signal (most of the EMG node's start-up) once designed."""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from biosig_ros.processing import filter_design

from ros_harness import REPO


@pytest.mark.parametrize("order, cutoff, btype, fs", [
    (5, [10.0, 425.0], "bandpass", 2000.0),
    (4, 5.0, "lowpass", 2000.0),
    (2, [20.0, 450.0], "bandpass", 1925.926),
])
def test_cached_design_equals_scipy_bit_for_bit(tmp_path, monkeypatch, order, cutoff, btype, fs):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = signal.butter(order, cutoff, btype=btype, fs=fs, output="sos")
    first = filter_design.butter_sos(order, cutoff, btype, fs)       # designed, then stored
    again = filter_design.butter_sos(order, cutoff, btype, fs)       # read back
    assert len(list((tmp_path / "biosig_ros" / "filters").glob("*.npy"))) == 1
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(again, expected)


@pytest.mark.integration
def test_a_warm_cache_spares_the_scipy_signal_import(tmp_path):
    code = ("import sys\n"
            "from biosig_ros.processing.emg_filters import BandPassSettings\n"
            "BandPassSettings(2000.0, 10.0, 425.0, 5).sos()\n"
            "print('scipy.signal' in sys.modules)\n")
    environment = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment,
                           capture_output=True, encoding="utf-8", errors="replace",
                           timeout=120) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["True", "False"], [r.stderr for r in runs]


def test_an_unwritable_cache_still_designs(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    np.testing.assert_array_equal(filter_design.butter_sos(4, 5.0, "lowpass", 1000.0),
                                  signal.butter(4, 5.0, btype="lowpass", fs=1000.0, output="sos"))
