"""replay_node: plays a recording (.bio, .c3d, .mcap) as live topics, paced in real time.

Publishes the recording's EMG as SignalChunk on `signal_topic` (default emg/raw) in chunks
of sample_rate / publish_rate samples, and its markers as MarkerSet on `markers_topic`
(default markers), one message per frame, in SI units with running indices. It prints what it
picked at start (EMG channels, subject, marker match with `model_path`) and plays nothing
before its consumers listen (wait_for_nodes / wait_for_subscribers).

With publish_clock it is the graph's clock source, as `ros2 bag play --clock`: it publishes
/clock (rosgraph_msgs/Clock), a simulated time advancing `speed` seconds per second, and stamps
its messages on it (the recording's own spacing); the other nodes run with use_sim_time:=true
and measure rates, silences and loss windows per simulated second.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock as ClockMsg

from biosig_ros.errors import ConfigError
from biosig_ros.io.labels import biomod_marker_names
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.io.replay import ReplayClock, ReplayEvent, ReplayPacer, ReplaySchedule
from biosig_ros.io.summary import summary_lines
from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.paths import resolve_data_path
from biosig_ros.ros import diagnostics
from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg, seconds_to_time
from biosig_ros.ros.node_context import node_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import output_qos
from biosig_ros.settings import doc_field, realtime_priority_field
from biosig_ros.signals import SignalChunk
from biosig_ros.stream_stats import StreamStats


@dataclass
class ReplayOptions:
    """How to play: pacing, topics, and when to start."""

    publish_rate: float = doc_field(100.0,
                                    "signal chunks per second (chunk = sample_rate / this)")
    speed: float = doc_field(1.0, "2.0 plays twice as fast (stamps follow the replay)")
    loop: bool = doc_field(False, "restart at the end; indices keep counting")
    signal_topic: str = doc_field("emg/raw", "topic of the EMG chunks (SignalChunk)")
    markers_topic: str = doc_field("markers", "topic of the marker frames (MarkerSet)")
    frame_id: str = doc_field("world", "header.frame_id of both topics (the capture frame)")
    wait_for_subscribers: int = doc_field(
        0, "start once each topic has at least this many subscriptions")
    wait_for_nodes: list[str] = doc_field(
        [], "and once each of these nodes (by name) subscribes to one of the topics, e.g. "
            "[emg_processing, ik]: nothing of the recording is played before they listen")
    wait_timeout: float = doc_field(30.0, "seconds to wait for them; then start anyway (WARN)")
    settle_time: float = doc_field(0.5, "seconds between ready and the first message: matching "
                                   "completes on both sides")
    publish_clock: bool = doc_field(
        False, "publish /clock (simulated time advancing `speed` seconds per second, from the "
        "node's start) and stamp on it: the clock of nodes run with use_sim_time:=true")
    clock_rate: float = doc_field(100.0, "/clock messages per second (publish_clock)",
                                  range=(1.0, 1000.0))
    realtime_priority: int = realtime_priority_field()

    def __post_init__(self):
        if self.publish_rate <= 0:
            raise ConfigError(f"publish_rate must be > 0, got {self.publish_rate}")
        if self.speed <= 0:
            raise ConfigError(f"speed must be > 0, got {self.speed}")
        if not 1.0 <= self.clock_rate <= 1000.0:
            raise ConfigError(f"clock_rate must be within 1..1000 Hz, got {self.clock_rate}")
        if self.wait_for_subscribers < 0 or self.wait_timeout < 0 or self.settle_time < 0:
            raise ConfigError("wait_for_subscribers, wait_timeout and settle_time must be >= 0")


class ReplayNode(Node):
    def __init__(self):
        super().__init__("replay")
        self.recording_settings = declare_settings(self, RecordingSettings)
        self.options = declare_settings(self, ReplayOptions)
        apply_priorities(self, self.options.realtime_priority)  # before the pacer thread
        self.recording = load_recording(self.recording_settings)
        self.diagnostics = diagnostics.Diagnostics(self, hardware_id=str(self.recording.path))

        chunk_size = 1
        self.signal_publisher = self.markers_publisher = None
        if self.recording.signal is not None:
            chunk_size = max(1, round(self.recording.signal.sample_rate
                                      / self.options.publish_rate))
            self.signal_publisher = self.create_publisher(
                SignalChunkMsg, self.options.signal_topic, output_qos())
        if self.recording.markers is not None:
            self.markers_publisher = self.create_publisher(
                MarkerSet, self.options.markers_topic, output_qos())
        self.replay_clock = self._clock_publisher = None
        self._clock_stop = threading.Event()
        if self.options.publish_clock:
            self.replay_clock = ReplayClock(self.options.speed)
            self._clock_publisher = self.create_publisher(ClockMsg, "/clock", QoSProfile(depth=10))
            threading.Thread(target=self._publish_clock, name="replay-clock", daemon=True).start()
        # Rates per second of the replay's time (the simulated one when it publishes /clock).
        self.stats = StreamStats(clock=self.replay_clock.now if self.replay_clock
                                 else node_seconds(self))
        self.pacer = ReplayPacer(ReplaySchedule(self.recording, chunk_size, self.options.loop),
                                 self._publish, self.options.speed,
                                 replay_clock=self.replay_clock)
        for line in self._describe(chunk_size):
            self.get_logger().info(line)
        self._status_timer = None
        self._ready_since = None
        # Waiting for consumers is real time: with use_sim_time, the node's clock only starts
        # with the /clock this node may be the one to publish.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._start_timer = self.create_timer(0.05, self._start_when_ready, clock=self._steady)
        self._waiting_since = self._steady.now()

    def _describe(self, chunk_size: int) -> list[str]:
        settings, options = self.recording_settings, self.options
        model_names = (biomod_marker_names(resolve_data_path(settings.model_path))
                       if settings.model_path else None)
        lines = summary_lines(self.recording, model_names, settings.model_path)
        plays = [f"x{options.speed:g}{', looped' if options.loop else ''}"
                 f"{', publishing /clock' if options.publish_clock else ''}"]
        if self.signal_publisher is not None:
            plays.append(f"{self.signal_publisher.topic_name} in chunks of {chunk_size}")
        if self.markers_publisher is not None:
            plays.append(f"{self.markers_publisher.topic_name} one frame per message")
        waits = []
        if options.wait_for_nodes:
            waits.append(f"nodes {', '.join(options.wait_for_nodes)}")
        if options.wait_for_subscribers:
            waits.append(f"{options.wait_for_subscribers} subscriber(s) per topic")
        if waits:
            plays.append(f"waiting for {' and '.join(waits)} (at most "
                         f"{options.wait_timeout:g} s)")
        return lines + ["playing " + "; ".join(plays)]

    def _missing_consumers(self) -> list[str]:
        """What the start still waits for (empty: ready)."""
        publishers = [p for p in (self.signal_publisher, self.markers_publisher) if p is not None]
        missing = [f"{p.topic_name} has {p.get_subscription_count()} subscriber(s)"
                   for p in publishers
                   if p.get_subscription_count() < self.options.wait_for_subscribers]
        if self.options.wait_for_nodes:
            listening = {info.node_name for p in publishers
                         for info in self.get_subscriptions_info_by_topic(p.topic_name)}
            # A node listening only to a stream this recording does not have (EMG processing
            # on a file without EMG) is ready: it would never subscribe to the others.
            listening |= {info.node_name for topic in self._absent_topics()
                          for info in self.get_subscriptions_info_by_topic(topic)}
            missing += [f"node {name} not subscribed" for name in self.options.wait_for_nodes
                        if name not in listening]
        return missing

    def _absent_topics(self) -> list[str]:
        """The topics this replay would publish if the recording had those streams."""
        absent = []
        if self.signal_publisher is None:
            absent.append(self.resolve_topic_name(self.options.signal_topic))
        if self.markers_publisher is None:
            absent.append(self.resolve_topic_name(self.options.markers_topic))
        return absent

    def _start_when_ready(self) -> None:
        missing = self._missing_consumers()
        waited = (self._steady.now() - self._waiting_since).nanoseconds * 1e-9
        if missing and waited < self.options.wait_timeout:
            return
        if self._ready_since is None:
            self._ready_since = waited
            if missing:
                self.get_logger().warning(
                    f"starting after {waited:.1f} s without all consumers: {'; '.join(missing)}")
            elif self.options.wait_for_nodes or self.options.wait_for_subscribers:
                self.get_logger().info(f"consumers ready after {waited:.1f} s")
        if waited - self._ready_since < self.options.settle_time:
            return
        self._start_timer.cancel()
        self.pacer.start()
        self.diagnostics.set(diagnostics.OK, "replaying")
        self._status_timer = self.create_timer(1.0, self._report)

    def _publish(self, event: ReplayEvent) -> None:
        item = event.item
        if isinstance(item, SignalChunk):
            self.signal_publisher.publish(chunk_to_msg(item, self.options.frame_id))
            self.stats.update(item.first_sample_index, item.sample_count)
        else:
            self.markers_publisher.publish(frame_to_msg(item, self.options.frame_id))

    def _report(self) -> None:
        if self.pacer.finished.is_set():
            self.diagnostics.set(diagnostics.OK, "finished", samples=self.stats.samples)
            if self._status_timer is not None:
                self.get_logger().info("replay finished")
                self._status_timer.cancel()
                self._status_timer = None
            return
        self.diagnostics.update_values(
            samples=self.stats.samples, rate=self.stats.rate(),
            max_lateness_ms=self.pacer.max_lateness * 1e3)

    def _publish_clock(self) -> None:
        """/clock at clock_rate, from a thread (an executor timer would wake the executor as
        often, and follow this very clock under use_sim_time)."""
        message = ClockMsg()
        period = 1.0 / self.options.clock_rate
        while True:
            message.clock = seconds_to_time(self.replay_clock.now())
            try:
                self._clock_publisher.publish(message)
            except Exception:  # noqa: BLE001 - the context shut down under the thread
                if self._clock_stop.is_set() or not self.context.ok():
                    return
                raise
            if self._clock_stop.wait(period):
                return

    def close(self) -> None:
        self._clock_stop.set()
        self.pacer.stop()


def main() -> None:
    main_for(ReplayNode, "replay_node")


if __name__ == "__main__":
    main()
