"""Shared by the wire-simulator tests: a Nexus-style .c3d scene with a second subject and an
analog device, the file's own values to compare with, and skips when Vicon's SDK is not built."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from biosig_ros.devices import vicon_sdk_library
from biosig_ros.devices.vicon_wire.recording_scene import scene_from_file
from nexus_c3d import SUBJECT, write_nexus_c3d

SECOND = "Object2"
OFFSET_MM = (1000.0, -250.0, 0.0)
OCCLUDED = ("RFIN", 5, 9)           # an occlusion added by the simulator (recording frames)


@dataclass
class FileTruth:
    """What the .c3d file holds, read with ezc3d (not through biosig_ros)."""

    marker_names: list[str]
    positions_mm: np.ndarray          # frames x markers x 3, NaN where the file has a gap
    emg_names: list[str]
    emg: np.ndarray                   # samples x channels, float32 as stored
    frame_rate: float
    samples_per_frame: int


def read_truth(path) -> FileTruth:
    import ezc3d

    c3d = ezc3d.c3d(str(path))
    labels = [str(n) for n in c3d["parameters"]["POINT"]["LABELS"]["value"]]
    keep = [i for i, label in enumerate(labels) if label.startswith(f"{SUBJECT}:")]
    points = np.asarray(c3d["data"]["points"])[:3, keep]               # 3 x markers x frames
    positions = np.transpose(points, (2, 1, 0)).astype(float)
    analog_labels = [str(n) for n in c3d["parameters"]["ANALOG"]["LABELS"]["value"]]
    emg_index = [i for i, label in enumerate(analog_labels) if "EMG" in label]
    analogs = np.asarray(c3d["data"]["analogs"])[0][emg_index].T.astype(np.float32)
    rate = float(c3d["parameters"]["POINT"]["RATE"]["value"][0])
    analog_rate = float(c3d["parameters"]["ANALOG"]["RATE"]["value"][0])
    return FileTruth([labels[i].split(":", 1)[1] for i in keep], positions,
                     [analog_labels[i] for i in emg_index], analogs, rate,
                     int(round(analog_rate / rate)))


def nexus_scene(tmp_path, seconds: float = 2.0):
    """(scene, truth): the file's subject, an offset copy, an occlusion, the EMG device."""
    path = tmp_path / "nexus.c3d"
    write_nexus_c3d(path, seconds=seconds)
    scene = scene_from_file(str(path), copies=[(SECOND, OFFSET_MM)], occlusions=[OCCLUDED])
    truth = read_truth(path)
    name, first, last = OCCLUDED
    truth.positions_mm[first:last + 1, truth.marker_names.index(name)] = np.nan
    return scene, truth


def require_sdk_library():
    path = vicon_sdk_library.library_path()
    if not path.is_file():
        pytest.skip(f"Vicon's DataStream SDK library is not built ({path}): "
                    f"{vicon_sdk_library.BUILD_HINT}")


def require_sample_client():
    path = vicon_sdk_library.sample_client_path()
    if not path.is_file():
        pytest.skip(f"Vicon's sample client is not built ({path}): "
                    f"{vicon_sdk_library.BUILD_HINT}")
    return path
