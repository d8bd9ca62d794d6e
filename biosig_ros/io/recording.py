"""Recordings to replay: biosiglive `.bio`, `.c3d` and `.mcap` files, in SI units.

A `.bio` file carries no names, rates or units, so they come from RecordingSettings; a `.c3d`
file (io.c3d_recording) or an `.mcap` file (io.mcap_recording) carries its own, and the
settings only select channels and markers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError, missing_extra
from biosig_ros.io.bio_file import load_bio
from biosig_ros.io.labels import biomod_marker_names
from biosig_ros.paths import resolve_data_path
from biosig_ros.settings import doc_field

# Length units of marker positions -> metres.
LENGTH_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
# Settings a .c3d or .mcap file carries itself.
BIO_ONLY = ("sample_rate", "signal_unit", "frame_rate", "marker_unit")
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
    """What a file holds, in SI units once loaded; `notes` say which automatic choices were
    made (channels picked by pattern, subject taken from the labels, names from the model)."""

    path: Path
    signal: SignalTrack | None
    markers: MarkerTrack | None
    notes: list[str] = field(default_factory=list)

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
    """What to read from a recording. A `.bio` file carries no names, rates or units: they come
    from here. A `.c3d` or `.mcap` file carries its own; here they only select."""

    file: str = doc_field("data/abd.bio", "recording to play: .bio, .c3d or .mcap")
    model_path: str = doc_field(
        "", ".bioMod whose marker names are matched against the recording's at start (and "
        "name the markers of a .bio that has as many markers as the model); empty = none")
    signal_key: str = doc_field(
        "emg", ".bio: key of the channels x samples signal; .mcap: SignalChunk topic (another "
        "value: the file's emg/raw); empty = no signal")
    channel_names: list[str] = doc_field(
        [], ".bio: names of the signal's channels (empty = EMG1..n); .c3d/.mcap: the analog "
        "channels to play, in this order (empty = those matching emg_channel_pattern)")
    emg_channel_pattern: str = doc_field(
        "EMG", ".c3d/.mcap: regular expression (case-insensitive) picking the EMG channels by "
        "label when channel_names is empty; empty = every analog channel")
    sample_rate: float = doc_field(2000.0, ".bio: Hz of the signal")
    signal_unit: str = doc_field("V", ".bio: unit of the signal: V, mV or uV")
    markers_key: str = doc_field(
        "markers", ".bio: key of the 3 x markers x frames array; .mcap: MarkerSet topic "
        "(another value: the file's markers); empty = no markers")
    marker_names: list[str] = doc_field(
        [], ".bio: marker names in file order (empty = the model's when model_path has as many "
        "markers, else marker_1..n); .c3d/.mcap: the markers to play, by name without the "
        "subject prefix (empty = all)")
    frame_rate: float = doc_field(100.0, ".bio: Hz of the markers")
    marker_unit: str = doc_field("mm", ".bio: unit of the marker positions: mm, cm or m")
    keep_flat_channels: bool = doc_field(
        False, ".c3d/.mcap: keep channels picked by emg_channel_pattern that are flat (constant, "
        "e.g. all zero: a sensor not worn) over the whole file; false skips them and says which")
    subject: str = doc_field(
        "", "MarkerSet.subject. Labels 'Subject:MARKER' give it (and lose the prefix); among "
        "several subjects this picks one (empty: the one whose markers match model_path's "
        "most). Empty for a .bio: the file's name")

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
    """Load settings.file (.bio, .c3d, .mcap) in SI units; raises ConfigError naming what is
    wrong."""
    recording = read_recording(settings)
    if recording.path.suffix.lower() != ".bio":
        defaults = RecordingSettings()
        ignored = [n for n in BIO_ONLY if getattr(settings, n) != getattr(defaults, n)]
        if ignored:
            recording.notes.append(f"{', '.join(ignored)}: for .bio files only, ignored (the "
                                   "file carries its own)")
    if recording.markers is not None:
        markers = recording.markers
        recording.notes.append(f"marker positions: {markers.unit} in the file, published in m")
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
        from biosig_ros.io.c3d_recording import load_c3d_recording

        return skip_flat_channels(load_c3d_recording(path, settings), settings)
    if suffix == ".mcap":
        from biosig_ros.io.mcap_recording import load_mcap_recording

        try:  # mcap and mcap_ros2 are imported there, when first needed
            recording = load_mcap_recording(path, settings)
        except ImportError as error:
            raise missing_extra(error, "reading .mcap", "mcap") from None
        return skip_flat_channels(recording, settings)
    raise ConfigError(f"{path}: unsupported recording format {suffix!r} "
                      "(expected .bio, .c3d or .mcap)")


def skip_flat_channels(recording: Recording, settings: RecordingSettings) -> Recording:
    """Channels picked by the label pattern that are constant over the whole file (all zero:
    an unplugged or unworn sensor) left out, with a note naming them; channels listed in
    channel_names, and all with keep_flat_channels, are kept."""
    signal = recording.signal
    if signal is None or settings.channel_names or settings.keep_flat_channels:
        return recording
    data = signal.data
    with np.errstate(invalid="ignore"):
        flat = ~(np.nanmax(data, axis=0, initial=-np.inf) > np.nanmin(data, axis=0,
                                                                       initial=np.inf))
    if not flat.any():
        return recording
    names = [n for n, f in zip(signal.channel_names, flat) if f]
    recording.notes.append(f"EMG channels: {len(names)} flat (constant over the whole file), "
                           f"skipped: {', '.join(names)} (parameter 'keep_flat_channels' keeps "
                           "them)")
    if flat.all():
        recording.notes.append("EMG channels: every picked channel is flat: no EMG played")
        recording.signal = None
    else:
        recording.signal = SignalTrack(np.ascontiguousarray(data[:, ~flat]), signal.sample_rate,
                                       [n for n, f in zip(signal.channel_names, flat) if not f],
                                       signal.unit)
    if recording.signal is None and recording.markers is None:
        raise ConfigError(f"{recording.path}: nothing to replay (no markers, and every EMG "
                          "channel is flat)")
    return recording


def _load_bio_recording(path: Path, settings: RecordingSettings) -> Recording:
    content = load_bio(path)
    signal = markers = None
    notes: list[str] = []
    if settings.signal_key:
        data = _bio_array(content, settings.signal_key, path, ndim=2)
        names = settings.channel_names or [f"EMG{i + 1}" for i in range(data.shape[0])]
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
        names = settings.marker_names or _default_marker_names(settings, data.shape[1], notes)
        if len(names) != data.shape[1]:
            raise ConfigError(f"{path}: '{settings.markers_key}' has {data.shape[1]} markers but "
                              f"marker_names lists {len(names)}")
        positions = np.transpose(data, (2, 1, 0))
        markers = MarkerTrack(occlusions_as_nan(positions), settings.frame_rate, list(names),
                              settings.subject or path.stem, settings.marker_unit.lower())
    if signal is None and markers is None:
        raise ConfigError(f"{path}: nothing to replay (signal_key and markers_key are empty)")
    return Recording(path, signal, markers, notes)


def _default_marker_names(settings: RecordingSettings, count: int, notes: list[str]) -> list[str]:
    # A .bio has no marker names: a model with as many markers most likely describes them.
    if settings.model_path:
        model_names = biomod_marker_names(resolve_data_path(settings.model_path))
        if len(model_names) == count:
            notes.append(f"marker names: the file has none; the model's {count} names are used "
                         "in the model's order (check them with bio_check)")
            return model_names
        notes.append(f"marker names: the file has none and the model has {len(model_names)} "
                     f"markers for {count} in the file: named marker_1..{count} (set "
                     "marker_names)")
    return [f"marker_{i + 1}" for i in range(count)]


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


def occlusions_as_nan(positions: np.ndarray) -> np.ndarray:
    # Vicon exports and biosiglive store an occluded marker as (0, 0, 0).
    positions = positions.astype(float, copy=True)
    positions[np.all(positions == 0.0, axis=-1)] = np.nan
    return positions
