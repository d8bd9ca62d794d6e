"""mcap_recorder: records chosen topics to MCAP files (ROS 2 CDR + message definitions), the
files rosbag2, Foxglove and PlotJuggler open; see docs/mcap.md for the layout.

Each topic of `topics` (relative names resolve in the node's namespace) is subscribed as soon
as it appears in the graph, with the type it is published with (reliably when its publishers
are reliable, as rosbag2 does), as raw CDR (no
deserialization): the executor only queues bytes; the writer thread writes them
(bridge/mcap_writer.py). Same file safety as the bridge's .bio recorder: record directory under
$ROS_HOME, no appending, rotation, disk guard; services ~/start_recording, ~/stop_recording.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from rclpy.node import Node

from biosig_ros.bridge.mcap_schema import message_definition
from biosig_ros.bridge.mcap_writer import McapRecorder, McapSettings
from biosig_ros.errors import ConfigError
from biosig_ros.nodes.recording_services import (
    recording_problem, recording_service, recording_values)
from biosig_ros.ros import diagnostics
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import recording_qos
from biosig_ros.settings import doc_field

DEFAULT_TOPICS = ["emg/raw", "emg/envelope", "markers", "ik/joint_states", "ik/marker_residuals",
                  "ik/quality", "/tf"]


@dataclass
class RecorderNodeSettings:
    """Which topics, and whether to start at once."""

    topics: list[str] = doc_field(DEFAULT_TOPICS, "topics to record (subscribed when they "
                                  "appear, with their published type)")
    record_on_start: bool = doc_field(False, "start recording when the node starts")

    def __post_init__(self):
        if not self.topics or any(not t.strip() for t in self.topics):
            raise ConfigError("parameter 'topics' must list at least one non-empty topic name")


def message_class(type_name: str):
    """'pkg/msg/Type' -> the generated Python class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class McapRecorderNode(Node):
    def __init__(self):
        super().__init__("mcap_recorder")
        self.settings = declare_settings(self, RecorderNodeSettings)
        self.mcap_settings = declare_settings(self, McapSettings, on_change=self._changed)
        self.recorder = McapRecorder(self.mcap_settings,
                                     on_error=lambda message: self.get_logger().error(message))
        self._wanted = {self.resolve_topic_name(t): t for t in self.settings.topics}
        self._recorded: dict[str, object] = {}
        self._unrecordable: dict[str, str] = {}
        recording_service(self, self.recorder,
                          lambda: f"{self.recorder.messages_recorded} messages")
        self.diagnostics = diagnostics.Diagnostics(self)
        self._discover()
        self.create_timer(1.0, self._discover)
        self.create_timer(1.0, self._report)
        if self.settings.record_on_start:
            try:
                self.get_logger().info(f"recording to {self.recorder.start()}")
            except ConfigError as error:
                self.recorder.stopped_by = f"not recording: {error}"
                self.get_logger().error(self.recorder.stopped_by)

    def _changed(self, settings: McapSettings, changed) -> None:
        self.recorder.files = self.recorder.settings = settings

    def _discover(self) -> None:
        """Subscribe to every wanted topic that has appeared, with its published type."""
        missing = [t for t in self._wanted if t not in self._recorded
                   and t not in self._unrecordable]
        if not missing:
            return
        types = dict(self.get_topic_names_and_types())
        for topic in missing:
            # A topic listed only for its subscribers has no publisher QoS to match yet.
            publishers = self.get_publishers_info_by_topic(topic) if topic in types else []
            if not publishers:
                continue
            type_name = types[topic][0]
            try:
                message_definition(type_name)   # the schema must be writable
                message_type = message_class(type_name)
            except (ConfigError, ImportError, AttributeError, ValueError) as error:
                self._unrecordable[topic] = f"{type_name}: {error}"
                self.get_logger().error(f"cannot record {topic}: {self._unrecordable[topic]}")
                continue
            qos = recording_qos(publishers)
            self._recorded[topic] = self.create_subscription(
                message_type, topic, self._queue(topic, type_name), qos, raw=True)
            self.get_logger().info(f"recording {topic} ({type_name}, "
                                   f"{qos.reliability.name.lower()})")

    def _queue(self, topic: str, type_name: str):
        clock = self.get_clock()

        def on_message(data: bytes) -> None:
            self.recorder.add(topic, type_name, data, clock.now().nanoseconds)
        return on_message

    def _report(self) -> None:
        values = recording_values(self.recorder)
        values["messages"] = self.recorder.messages_recorded
        values["topics"] = ", ".join(self._recorded) or "none yet"
        waiting = [self._wanted[t] for t in self._wanted
                   if t not in self._recorded and t not in self._unrecordable]
        problem = recording_problem(self.recorder)
        if problem:
            level, message = diagnostics.ERROR, problem
        elif self._unrecordable:
            level, message = diagnostics.WARN, "cannot record " + "; ".join(
                f"{t} ({why})" for t, why in self._unrecordable.items())
        elif waiting:
            level, message = diagnostics.WARN, "not published yet: " + ", ".join(waiting)
        else:
            level, message = diagnostics.OK, "recording" if self.recorder.recording else "idle"
        self.diagnostics.set(level, message, **values)

    def close(self) -> None:
        if self.recorder.recording:
            self.get_logger().info(f"recording closed: {self.recorder.stop()}")


def main() -> None:
    main_for(McapRecorderNode, "mcap_recorder")


if __name__ == "__main__":
    main()
