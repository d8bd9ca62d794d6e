"""Maximum voluntary contraction (MVC): per-channel value computed as biosiglive does, checked,
saved to and loaded from YAML.

biosiglive 2.0.3 (OfflineProcessing.compute_mvc(nb_muscles, mvc_trials, window_size)) sorts each
channel's processed signal in decreasing order and keeps the `window_size` largest samples
(its default mvc_windows = 2000, one second at 2 kHz). Its loop over muscles then concatenates
that block `nb_muscles` times before keeping the `window_size` largest again, so every value is
repeated nb_muscles times and the median it returns is not the median of the window_size largest
samples but, in effect, that of the ceil(window_size / nb_muscles) largest: with 10 channels and
a 2000-sample window, about the 100th largest sample. method="biosiglive" reproduces this exactly
(test/test_emg_biosiglive_compat.py compares with biosiglive itself); method="top_window_median"
is what its docstring describes: the median of the window_size largest samples.
ComputeMvc also processes the recorded trial twice before this step (see
biosiglive_compat.compute_mvc_from_raw); the node instead takes the envelope it publishes (before
normalisation), so that the MVC has exactly the units of the envelope it divides.
"""
from __future__ import annotations

import datetime
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from biosig_ros.errors import ConfigError
from biosig_ros.io.yaml_file import read_yaml, write_atomically
from biosig_ros.settings import require_choice

MVC_METHODS = ("biosiglive", "top_window_median")


def check_mvc(values, channel_count: int, name: str = "mvc") -> np.ndarray:
    """Per-channel MVC as a float array: one finite, strictly positive value per channel."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"parameter '{name}' must be a list of numbers: {error}") from error
    if array.size != channel_count:
        raise ConfigError(f"parameter '{name}' has {array.size} values for {channel_count} "
                          "channels: give one MVC per channel")
    bad = [i for i, v in enumerate(array) if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ConfigError(f"parameter '{name}' must be finite and above zero for every channel; "
                          f"channel(s) {bad} have {[float(array[i]) for i in bad]}")
    return array


def biosiglive_compute_mvc(nb_muscles: int, mvc_trials: np.ndarray, window_size: int) -> np.ndarray:
    """biosiglive's OfflineProcessing.compute_mvc without its file I/O, same result bit for bit.

    mvc_trials is channels x samples (biosiglive's layout)."""
    trials = np.asarray(mvc_trials, dtype=np.float64)
    if trials.ndim != 2 or trials.shape[1] == 0:
        raise ValueError("mvc_trials must be channels x samples with at least one sample")
    if nb_muscles < 1 or window_size < 1:
        raise ValueError("nb_muscles and window_size must be at least 1")
    largest = -np.sort(-trials, axis=1)[:, :window_size]
    # biosiglive concatenates `largest` nb_muscles times and sorts again: each value repeated
    # nb_muscles times in place, which keeps the decreasing order.
    repeated = np.repeat(largest, nb_muscles, axis=1)[:, :window_size]
    return np.median(repeated, axis=1)


def compute_mvc(envelope: np.ndarray, window: int, method: str = "biosiglive") -> np.ndarray:
    """Per-channel MVC of a recorded envelope (samples x channels, the node's layout)."""
    require_choice("mvc_method", method, MVC_METHODS)
    envelope = np.asarray(envelope, dtype=np.float64)
    if envelope.ndim != 2 or envelope.shape[0] == 0:
        raise ValueError("no envelope samples to compute an MVC from")
    if method == "biosiglive":
        return biosiglive_compute_mvc(envelope.shape[1], envelope.T, window)
    largest = -np.sort(-envelope, axis=0)[:window]
    return np.median(largest, axis=0)


@dataclass
class MvcCalibration:
    """An MVC as saved by the node: per-channel values (V of the envelope) and how they were
    obtained."""

    channel_names: list[str]
    mvc: list[float]
    unit: str = "V"
    method: str = "biosiglive"
    window_samples: int = 0
    envelope_rate: float = 0.0
    duration_s: float = 0.0
    created: str = ""
    envelope: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mvc = [float(v) for v in check_mvc(self.mvc, len(self.mvc) or 1)]
        if self.channel_names and len(self.channel_names) != len(self.mvc):
            raise ConfigError(f"MVC for {len(self.mvc)} channels but {len(self.channel_names)} "
                              "channel names")
        if not self.created:
            self.created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the YAML file atomically (a crash never leaves half a file)."""
        text = ("# Maximum voluntary contraction per channel, written by biosig_ros "
                "emg_processing_node.\n# Load it at start with the parameter mvc_file.\n"
                + yaml.safe_dump(asdict(self), sort_keys=False, default_flow_style=None))
        return write_atomically(path, text)


    @classmethod
    def load(cls, path: str | os.PathLike) -> "MvcCalibration":
        path = Path(path)
        content = read_yaml(path, "MVC file")
        if not isinstance(content, dict) or "mvc" not in content:
            raise ConfigError(f"MVC file {path} has no 'mvc' list")
        known = {k: v for k, v in content.items() if k in cls.__dataclass_fields__}
        known.setdefault("channel_names", [])
        try:
            return cls(**known)
        except ConfigError as error:
            raise ConfigError(f"MVC file {path}: {error}") from error
        except (TypeError, ValueError) as error:
            raise ConfigError(f"MVC file {path} is malformed: {error}") from error
