"""A WireScene from a recording file (.c3d, .bio, .mcap) read by biosig_ros.io.recording.

Markers in millimetres (the SDK's unit), NaN (or Vicon's (0, 0, 0)) = occluded; the EMG/analog
signal becomes one device whose outputs are the channels, in volts. Extra subjects: other
subjects of a .c3d (its `Subject:MARKER` prefixes), and offset copies of the first one (a
second person or object in the volume). Occlusions can be added over frame ranges.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from biosig_ros.devices.vicon_wire.scene import WireDevice, WireScene, WireSubject, offset_copy
from biosig_ros.errors import ConfigError
from biosig_ros.io.recording import Recording, RecordingSettings, read_recording

DEFAULT_DEVICE = "EMG"


def subject_from_recording(recording: Recording, name: str = "") -> WireSubject:
    markers = recording.markers
    if markers is None:
        raise ConfigError(f"{recording.path}: the wire simulator needs markers and the "
                          "recording has none")
    return WireSubject(name or markers.subject, list(markers.marker_names),
                       np.asarray(markers.in_unit("mm"), dtype=float))


def device_from_recording(recording: Recording, frame_rate: float,
                          name: str = DEFAULT_DEVICE) -> WireDevice | None:
    signal = recording.signal
    if signal is None:
        return None
    per_frame = signal.sample_rate / frame_rate
    if abs(per_frame - round(per_frame)) > 1e-9 or per_frame < 1:
        raise ConfigError(f"{recording.path}: analog rate {signal.sample_rate} Hz is not a "
                          f"whole multiple of the frame rate {frame_rate} Hz")
    unit = "volt" if signal.unit == "V" else signal.unit
    return WireDevice(name, list(signal.channel_names), signal.data, int(round(per_frame)), unit)


def apply_occlusions(subject: WireSubject, occlusions: Sequence[tuple[str, int, int]]) -> None:
    """Hide marker `name` over recording frames first..last (inclusive)."""
    for name, first, last in occlusions:
        if name not in subject.marker_names:
            raise ConfigError(f"occlusion of unknown marker {name!r} (markers of "
                              f"{subject.name}: {', '.join(subject.marker_names)})")
        subject.positions_mm[first:last + 1, subject.marker_names.index(name)] = np.nan


def scene_from_file(path: str, subjects: Sequence[str] = (),
                    copies: Sequence[tuple[str, Sequence[float]]] = (),
                    occlusions: Sequence[tuple[str, int, int]] = (), analog: bool = True,
                    device_name: str = DEFAULT_DEVICE, prefix_marker_names: bool = False,
                    settings: RecordingSettings | None = None) -> WireScene:
    """Read `path` and build the scene.

    subjects: subjects to read from a .c3d with several label prefixes (empty = the file's one;
    for a .bio the first name names the subject, default the file's stem). copies: (name,
    (dx, dy, dz) mm) offset copies of the first subject. occlusions apply to the first subject.
    settings: how to read the file (keys, names, rates of a .bio); file is set from path."""
    base = replace(settings or RecordingSettings(), file=path)
    if not analog:
        base = replace(base, signal_key="")
    wanted = list(subjects) or [base.subject]
    recordings = [read_recording(replace(base, subject=name)) for name in wanted]
    first = recordings[0]
    if first.markers is None:
        raise ConfigError(f"{path}: the wire simulator needs markers and the file has none")
    frame_rate = first.markers.frame_rate
    is_bio = first.path.suffix.lower() == ".bio"
    scene_subjects = [subject_from_recording(r, name if is_bio else "")
                      for r, name in zip(recordings, wanted)]
    apply_occlusions(scene_subjects[0], occlusions)
    for name, offset in copies:
        scene_subjects.append(offset_copy(scene_subjects[0], name, offset))
    device = device_from_recording(first, frame_rate, device_name) if analog else None
    return WireScene(frame_rate, scene_subjects, [device] if device else [],
                     prefix_marker_names)
