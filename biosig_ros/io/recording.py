"""Recordings to replay: biosiglive `.bio` files and `.c3d` files, in SI units.

A `.bio` file carries no names, rates or units, so they come from RecordingSettings; a `.c3d`
file carries its own (POINT/ANALOG RATE, LABELS, UNITS) and the settings only select channels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import load_bio
from biosig_ros.paths import resolve_data_path

# Length units of marker positions -> metres.
LENGTH_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
# Analog units -> volts (EMG); other units are passed through unchanged.
VOLTAGE_SCALE = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6}


@dataclass
class SignalTrack:
    """A multi-channel signal: data is samples x channels, already in SI units."""

    data: np.ndarray
    sample_rate: float
    channel_names: list[str]
    unit: str


@dataclass
class MarkerTrack:
    """Marker trajectories: positions is frames x markers x 3 in `unit` (metres once loaded
    with load_recording), NaN when occluded."""

    positions: np.ndarray
    frame_rate: float
    marker_names: list[str]
    subject: str
    unit: str = "m"

    def in_unit(self, unit: str) -> np.ndarray:
        """Positions converted to unit (mm, cm, m); exact when unit is the track's own."""
        if unit == self.unit:
            return self.positions
        return self.positions * (LENGTH_SCALE[self.unit] / LENGTH_SCALE[unit])


@dataclass
class Recording:
    path: Path
    signal: SignalTrack | None
    markers: MarkerTrack | None

    @property
    def duration(self) -> float:
        durations = []
        if self.signal is not None:
            durations.append(self.signal.data.shape[0] / self.signal.sample_rate)
        if self.markers is not None:
            durations.append(self.markers.positions.shape[0] / self.markers.frame_rate)
        return max(durations, default=0.0)


@dataclass
class RecordingSettings:
    """What to read from a recording. Names, rates and units are used for `.bio` files only;
    channel_names / marker_names select and order channels of a `.c3d` file (empty = all)."""

    file: str = "data/abd.bio"
    signal_key: str = "emg"                  # .bio key of the channels x samples signal ("" = none)
    channel_names: list[str] = field(default_factory=list)
    sample_rate: float = 2000.0
    signal_unit: str = "V"                   # unit of the .bio signal (V, mV, uV)
    markers_key: str = "markers"             # .bio key of the 3 x markers x frames array ("" = none)
    marker_names: list[str] = field(default_factory=list)
    frame_rate: float = 100.0
    marker_unit: str = "mm"                  # unit of the .bio marker positions (mm, cm, m)
    subject: str = "subject"

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be > 0 Hz, got {self.sample_rate}")
        if self.frame_rate <= 0:
            raise ConfigError(f"frame_rate must be > 0 Hz, got {self.frame_rate}")
        if self.marker_unit.lower() not in LENGTH_SCALE:
            raise ConfigError(f"marker_unit must be one of {sorted(LENGTH_SCALE)}, "
                              f"got {self.marker_unit!r}")
        if self.signal_unit.lower() not in VOLTAGE_SCALE:
            raise ConfigError(f"signal_unit must be one of V, mV, uV, got {self.signal_unit!r}")


def load_recording(settings: RecordingSettings) -> Recording:
    """Load settings.file (.bio or .c3d) in SI units; raises ConfigError naming what is wrong."""
    recording = read_recording(settings)
    if recording.markers is not None:
        markers = recording.markers
        recording.markers = MarkerTrack(markers.in_unit("m"), markers.frame_rate,
                                        markers.marker_names, markers.subject, "m")
    return recording


def read_recording(settings: RecordingSettings) -> Recording:
    """Like load_recording, but marker positions stay in the file's length unit (signals are
    always in volts)."""
    path = resolve_data_path(settings.file)
    if not path.is_file():
        raise ConfigError(f"recording file not found: {settings.file}")
    suffix = path.suffix.lower()
    if suffix == ".bio":
        return _load_bio_recording(path, settings)
    if suffix == ".c3d":
        return _load_c3d_recording(path, settings)
    raise ConfigError(f"{path}: unsupported recording format {suffix!r} (expected .bio or .c3d)")


def _load_bio_recording(path: Path, settings: RecordingSettings) -> Recording:
    content = load_bio(path)
    signal = markers = None
    if settings.signal_key:
        data = _bio_array(content, settings.signal_key, path, ndim=2)
        names = settings.channel_names or [f"channel_{i + 1}" for i in range(data.shape[0])]
        if len(names) != data.shape[0]:
            raise ConfigError(f"{path}: '{settings.signal_key}' has {data.shape[0]} channels but "
                              f"channel_names lists {len(names)}")
        scale = VOLTAGE_SCALE[settings.signal_unit.lower()]
        signal = SignalTrack(np.ascontiguousarray(data.T * scale), settings.sample_rate,
                             list(names), "V")
    if settings.markers_key:
        data = _bio_array(content, settings.markers_key, path, ndim=3)
        if data.shape[0] != 3:
            raise ConfigError(f"{path}: '{settings.markers_key}' must be 3 x markers x frames, "
                              f"got shape {data.shape}")
        names = settings.marker_names or [f"marker_{i + 1}" for i in range(data.shape[1])]
        if len(names) != data.shape[1]:
            raise ConfigError(f"{path}: '{settings.markers_key}' has {data.shape[1]} markers but "
                              f"marker_names lists {len(names)}")
        positions = np.transpose(data, (2, 1, 0))
        markers = MarkerTrack(_occlusions_as_nan(positions), settings.frame_rate, list(names),
                              settings.subject, settings.marker_unit.lower())
    if signal is None and markers is None:
        raise ConfigError(f"{path}: nothing to replay (signal_key and markers_key are empty)")
    return Recording(path, signal, markers)


def _bio_array(content: dict, key: str, path: Path, ndim: int) -> np.ndarray:
    if key not in content:
        raise ConfigError(f"{path}: no key '{key}' in the recording (keys: "
                          f"{', '.join(map(str, content))})")
    value = content[key]
    if isinstance(value, list):  # saved as a list per record (biosiglive StreamData style)
        value = np.concatenate([np.asarray(v[0] if isinstance(v, list) else v) for v in value],
                               axis=-1)
    value = np.asarray(value, dtype=float)
    if value.ndim != ndim:
        raise ConfigError(f"{path}: '{key}' must have {ndim} dimensions, got shape {value.shape}")
    return value


def _occlusions_as_nan(positions: np.ndarray) -> np.ndarray:
    # Vicon exports and biosiglive store an occluded marker as (0, 0, 0).
    positions = positions.astype(float, copy=True)
    positions[np.all(positions == 0.0, axis=-1)] = np.nan
    return positions


def _select(names: list[str], wanted: list[str], what: str, path: Path) -> list[int]:
    if not wanted:
        return list(range(len(names)))
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ConfigError(f"{path}: no {what} named {', '.join(missing)} "
                          f"(available: {', '.join(names)})")
    return [names.index(n) for n in wanted]


def _load_c3d_recording(path: Path, settings: RecordingSettings) -> Recording:
    import ezc3d  # imported here: .bio replay must not need it

    try:
        c3d = ezc3d.c3d(str(path))
    except Exception as error:  # noqa: BLE001 - ezc3d raises bare RuntimeError/IOError
        raise ConfigError(f"{path}: not a readable .c3d file: {error}") from error
    parameters = c3d["parameters"]
    signal = markers = None

    analog_names = [n.strip() for n in parameters["ANALOG"]["LABELS"]["value"]]
    analogs = np.asarray(c3d["data"]["analogs"], dtype=float)
    if analog_names and analogs.size:
        index = _select(analog_names, settings.channel_names, "analog channel", path)
        units = list(parameters["ANALOG"].get("UNITS", {}).get("value", [])) or ["V"] * len(analog_names)
        scales = np.array([VOLTAGE_SCALE.get(units[i].strip().lower(), 1.0) if i < len(units)
                           else 1.0 for i in index])
        data = analogs[0][index].T * scales
        unit = "V" if all(i < len(units) and units[i].strip().lower() in VOLTAGE_SCALE
                          for i in index) else (units[index[0]].strip() if units else "")
        signal = SignalTrack(np.ascontiguousarray(data), float(parameters["ANALOG"]["RATE"]["value"][0]),
                             [analog_names[i] for i in index], unit)

    point_names = [n.strip() for n in parameters["POINT"]["LABELS"]["value"]]
    points = np.asarray(c3d["data"]["points"], dtype=float)
    if point_names and points.size:
        index = _select(point_names, settings.marker_names, "marker", path)
        # The C3D default length unit is the millimetre when POINT:UNITS is absent or empty.
        unit = (list(parameters["POINT"].get("UNITS", {}).get("value", [])) or ["mm"])[0]
        unit = str(unit).strip().lower() or "mm"
        if unit not in LENGTH_SCALE:
            raise ConfigError(f"{path}: unsupported POINT:UNITS {unit!r}")
        positions = np.transpose(points[:3, index, :], (2, 1, 0))
        residuals = c3d["data"].get("meta_points", {}).get("residuals")
        if residuals is not None and np.size(residuals):
            positions[np.transpose(np.asarray(residuals)[0, index, :]) < 0] = np.nan
        markers = MarkerTrack(_occlusions_as_nan(positions),
                              float(parameters["POINT"]["RATE"]["value"][0]),
                              [point_names[i] for i in index], settings.subject, unit)
    if signal is None and markers is None:
        raise ConfigError(f"{path}: the .c3d file has neither points nor analog channels")
    return Recording(path, signal, markers)
