"""topic_monitor: one live line per topic with its rate, index gaps and delay.

Parameter `topics`: list of "TOPIC:TYPE" with TYPE one of SignalChunk, MarkerSet, JointState,
MarkerResiduals. Prints every `period` seconds, e.g.
    emg/raw         100.0 msg/s   2000.3 samples/s  gaps 0  delay 0.4 ms
"""
from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import JointState

from biosig_ros.errors import ConfigError
from biosig_ros.msg import MarkerResiduals, MarkerSet, SignalChunk
from biosig_ros.ros.conversions import time_to_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import input_qos
from biosig_ros.settings import doc_field
from biosig_ros.ros.node_context import node_seconds
from biosig_ros.stream_stats import StreamStats

MESSAGE_TYPES = {
    "SignalChunk": SignalChunk,
    "MarkerSet": MarkerSet,
    "JointState": JointState,
    "MarkerResiduals": MarkerResiduals,
}


def _index_and_count(msg) -> tuple[int, int] | None:
    if isinstance(msg, SignalChunk):
        return msg.first_sample_index, msg.sample_count
    if isinstance(msg, (MarkerSet, MarkerResiduals)):
        return msg.frame_number, 1
    return None  # JointState has no index: counted per message


@dataclass
class MonitorSettings:
    topics: list[str] = doc_field(
        ["emg/raw:SignalChunk", "markers:MarkerSet"], "topics to watch, as TOPIC:TYPE with TYPE "
        "one of SignalChunk, MarkerSet, JointState, MarkerResiduals (relative names resolve in "
        "the node's namespace)")
    period: float = doc_field(1.0, "seconds between two printed reports", range=(0.01, 3600.0),
                              runtime=True)
    niceness: int = doc_field(
        10, "added to this process's nice value at start: on a busy machine the nodes a robot "
        "depends on (IK, assist) then take the CPU first; 0 = unchanged", range=(0, 19))

    def __post_init__(self):
        for entry in self.topics:
            topic, _, type_name = entry.rpartition(":")
            if not topic or type_name not in MESSAGE_TYPES:
                raise ConfigError(f"topics entry {entry!r} must be TOPIC:TYPE with TYPE one of "
                                  f"{', '.join(MESSAGE_TYPES)}")
        if self.period <= 0:
            raise ConfigError(f"period must be > 0, got {self.period}")


class TopicMonitor(Node):
    def __init__(self):
        super().__init__("monitor")
        self.settings = declare_settings(self, MonitorSettings, on_change=self._on_change)
        apply_priorities(self, niceness=self.settings.niceness)
        self.stats: dict[str, StreamStats] = {}
        self.delays: dict[str, float] = {}
        self._message_counts: dict[str, int] = {}
        self._display: dict[str, str] = {}
        self._seconds = node_seconds(self)  # rates and delays on the node's clock (sim time)
        for entry in self.settings.topics:
            topic, _, type_name = entry.rpartition(":")
            self.stats[topic] = StreamStats(clock=self._seconds)
            self._message_counts[topic] = 0
            subscription = self.create_subscription(
                MESSAGE_TYPES[type_name], topic, lambda msg, t=topic: self._on_message(t, msg),
                input_qos())
            self._display[topic] = subscription.topic_name  # resolved in the node's namespace
        self._timer = self.create_timer(self.settings.period, self._print)

    def _on_change(self, updated: MonitorSettings, changed: list[str]) -> None:
        """`period` (the only runtime field): report at the new period from now on."""
        self._timer.cancel()
        self.destroy_timer(self._timer)
        self.settings = updated
        self._timer = self.create_timer(updated.period, self._print)

    def _on_message(self, topic: str, msg) -> None:
        indexed = _index_and_count(msg)
        stats = self.stats[topic]
        self._message_counts[topic] += 1
        if indexed is None:
            stats.update(self._message_counts[topic], 1)
        else:
            stats.update(*indexed)
        self.delays[topic] = self._seconds() - time_to_seconds(msg.header.stamp)

    def _print(self) -> None:
        lines = []
        width = max(len(t) for t in self._display.values())
        for topic, stats in self.stats.items():
            name = self._display[topic]
            if stats.messages == 0:
                lines.append(f"{name:<{width}}  no messages yet")
                continue
            idle = stats.seconds_since_last() or 0.0
            rate = stats.rate() if idle < 2 * self.settings.period else 0.0
            per_message = stats.samples / stats.messages
            lines.append(
                f"{name:<{width}}  {rate / per_message:7.1f} msg/s  {rate:9.1f} samples/s  "
                f"gaps {stats.gaps}  delay {self.delays[topic] * 1e3:6.1f} ms")
        print("\n".join(lines), flush=True)


def main() -> None:
    main_for(TopicMonitor, "topic_monitor")


if __name__ == "__main__":
    main()
