"""MCAP recording of serialized ROS 2 messages, without ROS: rotating_recorder's life cycle
(record directory, no appending, rotation, disk guard) with MCAP parts.

Messages arrive already CDR-encoded (a raw rclpy subscription, or an encoder from
mcap_ros2) with their type name ('pkg/msg/Type') and are queued from any thread; every
`flush_period` the writer thread writes the queue as one chunk (zstd, lz4 or none) and flushes
the file, so a crash leaves a file whose chunks up to the last flush are readable by any MCAP
stream reader (a cut file has no summary; the records before the cut are intact). A part
closed normally ends with the summary (statistics, chunk and message indexes) that rosbag2,
Foxglove and PlotJuggler use. Layout: profile `ros2`, one schema per type (encoding
`ros2msg`, name `pkg/msg/Type`, data = mcap_schema.message_definition), one channel per topic
(message encoding `cdr`), log_time = receive time, publish_time = the message's header stamp
when the caller knows it, else receive time.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mcap.writer import CompressionType, Writer

from biosig_ros.bridge.mcap_schema import message_definition
from biosig_ros.bridge.record_files import RecordFileSettings
from biosig_ros.bridge.rotating_recorder import RotatingRecorder
from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field, require_choice

COMPRESSIONS = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4,
                "none": CompressionType.NONE}
PROFILE = "ros2"
LIBRARY = "biosig_ros"


@dataclass
class McapSettings(RecordFileSettings):
    """What and how the MCAP recorder writes."""

    flush_period: float = doc_field(
        0.5, "seconds between chunks written and flushed (a crash loses at most this)",
        range=(0.01, 60.0))
    compression: str = doc_field("zstd", "chunk compression: zstd, lz4 or none")

    def __post_init__(self):
        super().__post_init__()
        require_choice("compression", self.compression, COMPRESSIONS)
        if not 0.01 <= self.flush_period <= 60.0:
            raise ConfigError(f"parameter 'flush_period' must be in [0.01, 60] s, got "
                              f"{self.flush_period}")


class McapFile:
    """One open MCAP file (profile ros2) and the ids its schemas and channels got."""

    def __init__(self, path: Path, compression: CompressionType = CompressionType.ZSTD):
        self.file = open(path, "wb")
        self.writer = Writer(self.file, compression=compression, chunk_size=64 * 1024 * 1024)
        self.writer.start(profile=PROFILE, library=LIBRARY)
        self.schemas: dict[str, int] = {}
        self.channels: dict[str, int] = {}
        self.sequence: dict[int, int] = {}

    def channel(self, topic: str, type_name: str) -> int:
        channel = self.channels.get(topic)
        if channel is None:
            schema = self.schemas.get(type_name)
            if schema is None:
                schema = self.writer.register_schema(
                    type_name, "ros2msg", message_definition(type_name).encode())
                self.schemas[type_name] = schema
            channel = self.writer.register_channel(topic, "cdr", schema)
            self.channels[topic] = channel
        return channel

    def write(self, topic: str, type_name: str, data: bytes, log_time: int,
              publish_time: int) -> None:
        channel = self.channel(topic, type_name)
        sequence = self.sequence.get(channel, 0)
        self.sequence[channel] = sequence + 1
        self.writer.add_message(channel, log_time, data, publish_time, sequence)

    def close(self) -> None:
        try:
            self.writer.finish()
        finally:
            self.file.close()


class McapRecorder(RotatingRecorder):
    """Queue messages with add() from any thread; a writer thread writes them to MCAP."""

    suffix = ".mcap"
    prefix = "recording"

    def __init__(self, settings: McapSettings, clock=time.time, **guard):
        super().__init__(settings, settings.flush_period, clock, **guard)
        self.settings = settings
        self._lock = threading.Lock()
        self._queue: list[tuple[str, str, bytes, int, int]] = []
        self.messages_recorded = 0

    def start(self, path: str = "") -> Path:
        self.messages_recorded = 0
        return super().start(path or self.settings.record_path)

    def add(self, topic: str, type_name: str, data: bytes, log_time_ns: int,
            publish_time_ns: int | None = None) -> None:
        """Queue one CDR-encoded message (ignored while not recording)."""
        if self._writer is None:
            return
        with self._lock:
            self._queue.append((topic, type_name, bytes(data), log_time_ns,
                                log_time_ns if publish_time_ns is None else publish_time_ns))

    def _open_part(self, path: Path) -> McapFile:
        return McapFile(path, COMPRESSIONS[self.settings.compression])

    def _write_pending(self, part: McapFile) -> bool:
        with self._lock:
            queue, self._queue = self._queue, []
        if not queue:
            return False
        for topic, type_name, data, log_time, publish_time in queue:
            try:
                part.write(topic, type_name, data, log_time, publish_time)
            except ConfigError as error:  # no definition of that type: that topic is skipped
                self.last_error = str(error)
        part.writer.flush()   # the chunk ends here: readable after a crash
        self.messages_recorded += len(queue)
        return True

    def _close_part(self, part: McapFile) -> None:
        part.close()

    def _part_bytes(self, part: McapFile) -> int:
        return part.file.tell()

    def _discard_pending(self) -> None:
        with self._lock:
            self._queue = []
