"""Butterworth second-order sections designed by scipy once, then read back from disk.

`import scipy.signal` costs about 1.4 s of CPU (its package loads scipy.stats, interpolate,
...) at every start of a node that designs a filter: most of the EMG node's start-up. The
coefficients depend only on the design's arguments and scipy's version, so the first design is
stored (`$XDG_CACHE_HOME/biosig_ros/filters`, else `~/.cache/...`) and later ones are read back
bit for bit. An unwritable cache only costs the import again.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "biosig_ros" / "filters"


def butter_sos(order: int, cutoff, btype: str, fs: float) -> np.ndarray:
    """scipy.signal.butter(order, cutoff, btype, fs=fs, output="sos"), from the cache when
    designed before with this scipy."""
    cutoff = [float(c) for c in np.atleast_1d(cutoff)]
    key = repr(("butter-sos", int(order), cutoff, btype, float(fs), version("scipy")))
    path = cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    from scipy import signal

    sos = signal.butter(order, cutoff if len(cutoff) > 1 else cutoff[0], btype=btype, fs=fs,
                        output="sos")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as file:
            np.save(file, sos, allow_pickle=False)
        os.replace(file.name, path)  # whole or absent: another process may read it now
    except OSError:
        pass
    return sos
