"""Which model muscles each EMG channel drives, with its gain and MVC: one YAML file, read at
start and written back by the calibration.

    # channel: muscles it drives (a muscle belongs to one channel at most); gain scales the
    # channel's activation (fitted by calibration); mvc (optional, units of the envelope)
    # normalises an envelope that is not already a fraction of MVC.
    channels:
      EMG1: {muscles: [DELT1], gain: 1.0, mvc: 0.00021}
      EMG2: [DELT2, DELT3]          # short form: gain 1, no mvc
    force_scale: {DELT3: 1.2}       # optional: a muscle's active force x this (default 1)
"""
from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from biosig_ros.errors import ConfigError
from biosig_ros.io.yaml_file import read_yaml, write_atomically
from biosig_ros.paths import resolve_data_path


@dataclass
class ChannelEntry:
    muscles: list[str]
    gain: float = 1.0
    mvc: float | None = None


@dataclass
class ChannelMap:
    channels: dict[str, ChannelEntry]
    notes: dict = field(default_factory=dict)  # calibration figures, kept with the gains
    force_scale: dict[str, float] = field(default_factory=dict)  # muscle -> active force x

    def check(self, muscle_names) -> None:
        """ConfigError naming the first problem: unknown muscle, muscle in two channels, bad
        gain or MVC."""
        owner: dict[str, str] = {}
        for muscle, scale in self.force_scale.items():
            if muscle not in muscle_names:
                raise ConfigError(f"channel map: force_scale names muscle {muscle!r}, which "
                                  "the model does not have")
            if not (math.isfinite(scale) and scale > 0):
                raise ConfigError(f"channel map: force_scale of {muscle} is {scale}: give a "
                                  "number > 0")
        for channel, entry in self.channels.items():
            if not (math.isfinite(entry.gain) and entry.gain >= 0):
                raise ConfigError(f"channel map: channel {channel} has gain {entry.gain}: give "
                                  "a finite number >= 0")
            if entry.mvc is not None and not (math.isfinite(entry.mvc) and entry.mvc > 0):
                raise ConfigError(f"channel map: channel {channel} has mvc {entry.mvc}: give a "
                                  "number > 0 or leave it out")
            for muscle in entry.muscles:
                if muscle not in muscle_names:
                    raise ConfigError(f"channel map: channel {channel} names muscle {muscle!r}, "
                                      f"which the model does not have (it has: "
                                      f"{', '.join(muscle_names)})")
                if muscle in owner:
                    raise ConfigError(f"channel map: muscle {muscle} is driven by both "
                                      f"{owner[muscle]} and {channel}; give it one channel")
                owner[muscle] = channel

    def unmapped(self, muscle_names) -> list[str]:
        mapped = {m for entry in self.channels.values() for m in entry.muscles}
        return [m for m in muscle_names if m not in mapped]

    def gains(self, names) -> np.ndarray:
        return np.array([self.channels[n].gain for n in names], dtype=float)

    def scales(self, muscle_names) -> np.ndarray:
        return np.array([self.force_scale.get(m, 1.0) for m in muscle_names], dtype=float)

    def with_gains(self, names, gains, notes: dict,
                   force_scale: dict[str, float] | None = None) -> "ChannelMap":
        channels = {n: ChannelEntry(list(e.muscles), e.gain, e.mvc)
                    for n, e in self.channels.items()}
        for name, gain in zip(names, gains):
            if name in channels:
                channels[name].gain = float(gain)
        scales = dict(self.force_scale if force_scale is None else force_scale)
        return ChannelMap(channels, dict(notes), scales)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ChannelMap":
        path = resolve_data_path(str(path))
        content = read_yaml(path, "channel map",
                            missing=f"parameter 'channel_map_file': {path} does not exist")
        if not isinstance(content, dict) or not isinstance(content.get("channels"), dict):
            raise ConfigError(f"channel map {path} has no 'channels' mapping")
        return cls.from_dict(content, str(path))

    @classmethod
    def from_dict(cls, content: dict, origin: str = "channel map") -> "ChannelMap":
        channels = {}
        for name, value in (content.get("channels") or {}).items():
            if isinstance(value, list):
                value = {"muscles": value}
            if not isinstance(value, dict) or not isinstance(value.get("muscles"), list):
                raise ConfigError(f"{origin}: channel {name} needs a list of muscles")
            try:
                mvc = value.get("mvc")
                channels[str(name)] = ChannelEntry([str(m) for m in value["muscles"]],
                                                   float(value.get("gain", 1.0)),
                                                   None if mvc is None else float(mvc))
            except (TypeError, ValueError) as error:
                raise ConfigError(f"{origin}: channel {name}: {error}") from error
        if not channels:
            raise ConfigError(f"{origin} maps no channel to any muscle")
        scales = content.get("force_scale") or {}
        if not isinstance(scales, dict):
            raise ConfigError(f"{origin}: force_scale must map muscle names to numbers")
        try:
            scales = {str(m): float(v) for m, v in scales.items()}
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{origin}: force_scale: {error}") from error
        return cls(channels, dict(content.get("calibration") or {}), scales)

    def to_dict(self) -> dict:
        channels = {}
        for name, entry in self.channels.items():
            item = {"muscles": list(entry.muscles), "gain": float(entry.gain)}
            if entry.mvc is not None:
                item["mvc"] = float(entry.mvc)
            channels[name] = item
        content = {"channels": channels}
        if self.force_scale:
            content["force_scale"] = {m: float(v) for m, v in self.force_scale.items()}
        if self.notes:
            content["calibration"] = self.notes
        return content

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a crash never leaves half a file)."""
        created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        text = (f"# EMG channel -> muscles map with calibrated gains, written by biosig_ros "
                f"torque_node {created}.\n# Load it with the parameter channel_map_file.\n"
                + yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None))
        return write_atomically(path, text)
