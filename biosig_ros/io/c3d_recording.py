"""A `.c3d` file as a Recording: EMG channels picked by label, `Subject:MARKER` labels split.

Names, rates and units come from the file (POINT/ANALOG RATE, LABELS, UNITS); ezc3d is
imported only here, so that `.bio` replay does not need it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.io.labels import biomod_marker_names, pick_channels, split_subject
from biosig_ros.io.recording import (
    LENGTH_SCALE, VOLTAGE_SCALE, MarkerTrack, Recording, RecordingSettings, SignalTrack,
    occlusions_as_nan)
from biosig_ros.paths import resolve_data_path


def load_c3d_recording(path: Path, settings: RecordingSettings) -> Recording:
    """Read path; marker positions stay in the file's length unit (signals are in volts)."""
    import ezc3d

    try:
        c3d = ezc3d.c3d(str(path))
    except Exception as error:  # noqa: BLE001 - ezc3d raises bare RuntimeError/IOError
        raise ConfigError(f"{path}: not a readable .c3d file: {error}") from error
    parameters = c3d["parameters"]
    notes: list[str] = []
    signal = _signal(path, parameters, np.asarray(c3d["data"]["analogs"], dtype=float),
                     settings, notes)
    markers = _markers(path, parameters, c3d["data"], settings, notes)
    if signal is None and markers is None:
        raise ConfigError(f"{path}: nothing to replay (no markers and no EMG channel)")
    return Recording(path, signal, markers, notes)


def _model_names(settings: RecordingSettings) -> list[str] | None:
    """The model's marker names (to pick a subject among several), None without a model."""
    if not settings.model_path:
        return None
    return biomod_marker_names(resolve_data_path(settings.model_path))


def _labels(group: dict) -> list[str]:
    return [str(n).strip() for n in group.get("LABELS", {}).get("value", [])]


def _signal(path, parameters, analogs, settings, notes) -> SignalTrack | None:
    labels = _labels(parameters["ANALOG"])
    if not labels or not analogs.size:
        return None
    try:
        index = pick_channels(labels, settings.channel_names, settings.emg_channel_pattern)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
    if not settings.channel_names:
        if not index:
            notes.append(f"EMG channels: no analog label matches emg_channel_pattern "
                         f"{settings.emg_channel_pattern!r} (labels: {', '.join(labels)}): "
                         "markers only; set channel_names or emg_channel_pattern")
            return None
        left = [label for i, label in enumerate(labels) if i not in set(index)]
        notes.append(f"EMG channels: {len(index)} of {len(labels)} analog channels match "
                     f"emg_channel_pattern {settings.emg_channel_pattern!r}"
                     + (f"; left out: {', '.join(left)}" if left else ""))
    units = [str(u).strip() for u in parameters["ANALOG"].get("UNITS", {}).get("value", [])]
    units += ["V"] * (len(labels) - len(units))
    chosen = [units[i].lower() for i in index]
    scales = np.array([VOLTAGE_SCALE.get(u, 1.0) for u in chosen])
    unit = "V" if all(u in VOLTAGE_SCALE for u in chosen) else units[index[0]]
    if unit != "V":
        notes.append(f"EMG channels: units {sorted(set(chosen))} are not all volts: passed on "
                     "as they are")
    return SignalTrack(np.ascontiguousarray(analogs[0][index].T * scales),
                       float(parameters["ANALOG"]["RATE"]["value"][0]),
                       [labels[i] for i in index], unit)


def _markers(path, parameters, data, settings, notes) -> MarkerTrack | None:
    labels = _labels(parameters["POINT"])
    points = np.asarray(data["points"], dtype=float)
    if not labels or not points.size:
        return None
    split = split_subject(labels, settings.subject, _model_names(settings))
    if split.why:
        notes.append(split.why)
    elif split.subject and split.subject != settings.subject:
        notes.append(f"subject {split.subject!r} taken from the labels' prefix "
                     f"'{split.subject}:'")
    if split.left_out:
        notes.append(f"{len(split.left_out)} trajectories of no subject or another one left "
                     f"out: {', '.join(split.left_out[:8])}"
                     f"{', ...' if len(split.left_out) > 8 else ''}")
    try:
        chosen = pick_channels(split.names, settings.marker_names, "", "marker")
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
    index = [split.indices[i] for i in chosen]
    # The C3D default length unit is the millimetre when POINT:UNITS is absent or empty.
    unit = (list(parameters["POINT"].get("UNITS", {}).get("value", [])) or ["mm"])[0]
    unit = str(unit).strip().lower() or "mm"
    if unit not in LENGTH_SCALE:
        raise ConfigError(f"{path}: unsupported POINT:UNITS {unit!r} (expected mm, cm or m)")
    positions = np.transpose(points[:3, index, :], (2, 1, 0))
    residuals = data.get("meta_points", {}).get("residuals")
    if residuals is not None and np.size(residuals):
        positions[np.transpose(np.asarray(residuals)[0, index, :]) < 0] = np.nan
    return MarkerTrack(occlusions_as_nan(positions),
                       float(parameters["POINT"]["RATE"]["value"][0]),
                       [split.names[i] for i in chosen],
                       split.subject or settings.subject or path.stem, unit)
