"""An MCAP file (ROS 2 CDR, as rosbag2 and the mcap_recorder write it) as a Recording.

The EMG is the `biosig_ros/msg/SignalChunk` topic named by `signal_key` when the file has it,
else the one ending in `emg/raw` (else the only one); the markers likewise with `markers_key`
and `biosig_ros/msg/MarkerSet` (topics ending in `markers`). Chunks are placed by their
first_sample_index and frames by their frame_number, so samples and frames lost before the
recording show as gaps (zeros for EMG, NaN markers), counted in the notes. `mcap` and
`mcap-ros2-support` are imported only here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.io.labels import pick_channels
from biosig_ros.io.recording import MarkerTrack, Recording, RecordingSettings, SignalTrack

SIGNAL_TYPE = "biosig_ros/msg/SignalChunk"
MARKERS_TYPE = "biosig_ros/msg/MarkerSet"


def _topic(channels: dict[str, str], schema: str, wanted: str, suffix: str, path: Path):
    """The topic of type schema to read: wanted when present, else the one ending in suffix,
    else the only one; None when the file has none (or wanted is empty)."""
    if not wanted:
        return None
    topics = sorted(t for t, s in channels.items() if s == schema)
    for candidate in (wanted, "/" + wanted.lstrip("/")):
        if candidate in topics:
            return candidate
    ending = [t for t in topics if t.rstrip("/").endswith(suffix)]
    if len(ending) == 1 or len(topics) == 1:
        return (ending or topics)[0]
    if topics:
        raise ConfigError(f"{path}: several {schema} topics ({', '.join(topics)}): name one "
                          f"with {'signal_key' if schema == SIGNAL_TYPE else 'markers_key'}")
    return None


def _read_raw(path: Path, notes: list[str]):
    """{topic: (schema, channel, [message data])} of the SignalChunk and MarkerSet topics, in
    one streaming pass: a file cut short (a crash while recording) yields what precedes the
    cut."""
    from mcap.reader import NonSeekingReader

    wanted_types = (SIGNAL_TYPE, MARKERS_TYPE)
    topics: dict[str, tuple] = {}
    try:
        with open(path, "rb") as file:
            reader = NonSeekingReader(file)
            for schema, channel, message in reader.iter_messages(log_time_order=False):
                if schema is None or schema.name not in wanted_types:
                    continue
                topics.setdefault(channel.topic, (schema, channel, []))[2].append(message.data)
    except Exception as error:  # noqa: BLE001 - mcap raises several kinds at a torn end
        if not topics:
            raise ConfigError(f"{path}: not a readable .mcap file ({type(error).__name__}: "
                              f"{error})") from error
        notes.append(f"the file ends early ({type(error).__name__}): read up to the last "
                     "whole chunk")
    return topics


def load_mcap_recording(path: Path, settings: RecordingSettings) -> Recording:
    """Read path; positions in metres, signals in the unit the messages carry."""
    try:
        from mcap_ros2.decoder import DecoderFactory
    except ImportError as error:
        raise ConfigError(f"{path}: reading .mcap needs the packages mcap and mcap-ros2-support "
                          f"(pip install 'biosig-ros-core[mcap]'): {error}") from error
    notes: list[str] = []
    raw = _read_raw(path, notes)
    types = {topic: schema.name for topic, (schema, _, _) in raw.items()}
    signal_topic = _topic(types, SIGNAL_TYPE, settings.signal_key, "emg/raw", path)
    markers_topic = _topic(types, MARKERS_TYPE, settings.markers_key, "markers", path)
    if not signal_topic and not markers_topic:
        raise ConfigError(f"{path}: no {SIGNAL_TYPE} or {MARKERS_TYPE} message in the file")
    factory = DecoderFactory()

    def decoded(topic):
        if not topic:
            return []
        schema, channel, messages = raw[topic]
        decode = factory.decoder_for(channel.message_encoding, schema)
        if decode is None:
            raise ConfigError(f"{path}: topic {topic} is not ROS 2 CDR "
                              f"({channel.message_encoding})")
        return [decode(data) for data in messages]

    notes.insert(0, "topics: " + ", ".join(f"{t} ({len(raw[t][2])} messages)"
                                           for t in (signal_topic, markers_topic) if t))
    chunks, frames = decoded(signal_topic), decoded(markers_topic)
    signal = _signal(chunks, settings, notes, path) if chunks else None
    markers = _markers(frames, settings, notes) if frames else None
    return Recording(path, signal, markers, notes)


def _signal(chunks, settings, notes, path) -> SignalTrack | None:
    first = chunks[0]
    labels = list(first.channel_names)
    try:
        index = pick_channels(labels, settings.channel_names, settings.emg_channel_pattern)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
    if not index:
        notes.append(f"EMG channels: no channel label matches emg_channel_pattern "
                     f"{settings.emg_channel_pattern!r} (labels: {', '.join(labels)}): markers "
                     "only; set channel_names or emg_channel_pattern")
        return None
    start = int(first.first_sample_index)
    end = max(int(c.first_sample_index) + int(c.sample_count) for c in chunks)
    data = np.zeros((end - start, len(labels)))
    filled = 0
    for chunk in chunks:
        if list(chunk.channel_names) != labels:
            raise ConfigError(f"{path}: the channel layout changes within the recording "
                              f"({', '.join(labels)} -> {', '.join(chunk.channel_names)})")
        offset = int(chunk.first_sample_index) - start
        values = np.asarray(chunk.data, dtype=float).reshape(int(chunk.sample_count), len(labels))
        data[offset:offset + len(values)] = values
        filled += len(values)
    if filled < len(data):
        notes.append(f"EMG: {len(data) - filled} samples missing from the recording "
                     "(lost before it), played as zeros")
    return SignalTrack(np.ascontiguousarray(data[:, index]), float(first.sample_rate),
                       [labels[i] for i in index], first.unit or "V")


def _markers(frames, settings, notes) -> MarkerTrack:
    names = list(frames[0].marker_names)
    wanted = settings.marker_names or names
    start = int(frames[0].frame_number)
    count = max(int(f.frame_number) for f in frames) - start + 1
    positions = np.full((count, len(wanted), 3), np.nan)
    for frame in frames:
        incoming = {n: i for i, n in enumerate(frame.marker_names)}
        points = np.array([(p.x, p.y, p.z) for p in frame.positions], dtype=float)
        if len(frame.occluded):
            points[np.asarray(frame.occluded, dtype=bool)] = np.nan
        row = int(frame.frame_number) - start
        for column, name in enumerate(wanted):
            if name in incoming:
                positions[row, column] = points[incoming[name]]
    if count > len(frames):
        notes.append(f"markers: {count - len(frames)} frames missing from the recording "
                     "(lost before it), played as occluded")
    return MarkerTrack(positions, float(frames[0].frame_rate), list(wanted),
                       frames[0].subject or settings.subject, "m")
