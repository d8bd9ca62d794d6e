"""replay_node: plays a recording (.bio, .c3d) as live topics, paced in real time.

Publishes the recording's signal as SignalChunk on `signal_topic` (default /emg/raw) in chunks
of sample_rate / publish_rate samples, and its markers as MarkerSet on `markers_topic`
(default /markers), one message per frame, in SI units with running indices.
"""
from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node

from biosig_ros.errors import ConfigError
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.io.replay import ReplayEvent, ReplayPacer, ReplaySchedule
from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros import diagnostics
from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import output_qos
from biosig_ros.signals import SignalChunk
from biosig_ros.stream_stats import StreamStats


@dataclass
class ReplayOptions:
    """How to play: pacing, topics, and when to start."""

    publish_rate: float = 100.0        # signal chunks per second (chunk = sample_rate / this)
    speed: float = 1.0                 # 2.0 plays twice as fast (stamps follow the replay)
    loop: bool = False                 # restart at the end; indices keep counting
    signal_topic: str = "emg/raw"
    markers_topic: str = "markers"
    frame_id: str = "world"
    wait_for_subscribers: int = 0      # wait until this many subscribers on each topic ...
    wait_timeout: float = 30.0         # ... for at most this many seconds, then start anyway
    settle_time: float = 0.5           # then wait this long: matching completes on both sides

    def __post_init__(self):
        if self.publish_rate <= 0:
            raise ConfigError(f"publish_rate must be > 0, got {self.publish_rate}")
        if self.speed <= 0:
            raise ConfigError(f"speed must be > 0, got {self.speed}")


class ReplayNode(Node):
    def __init__(self):
        super().__init__("replay")
        self.recording_settings = declare_settings(self, RecordingSettings)
        self.options = declare_settings(self, ReplayOptions)
        self.recording = load_recording(self.recording_settings)
        self.diagnostics = diagnostics.Diagnostics(self, hardware_id=str(self.recording.path))

        chunk_size = 1
        self.signal_publisher = self.markers_publisher = None
        if self.recording.signal is not None:
            chunk_size = max(1, round(self.recording.signal.sample_rate / self.options.publish_rate))
            self.signal_publisher = self.create_publisher(
                SignalChunkMsg, self.options.signal_topic, output_qos())
        if self.recording.markers is not None:
            self.markers_publisher = self.create_publisher(
                MarkerSet, self.options.markers_topic, output_qos())
        self.stats = StreamStats()
        self.pacer = ReplayPacer(ReplaySchedule(self.recording, chunk_size, self.options.loop),
                                 self._publish, self.options.speed)
        self.get_logger().info(
            f"replaying {self.recording.path} ({self.recording.duration:.1f} s"
            f"{', looped' if self.options.loop else ''}, x{self.options.speed:g}): "
            + self._describe(chunk_size))
        self._status_timer = None
        self._ready_since = None
        self._start_timer = self.create_timer(0.05, self._start_when_ready)
        self._waiting_since = self.get_clock().now()

    def _describe(self, chunk_size: int) -> str:
        parts = []
        if self.recording.signal is not None:
            signal = self.recording.signal
            parts.append(f"{self.options.signal_topic} {len(signal.channel_names)} channels at "
                         f"{signal.sample_rate:g} Hz in chunks of {chunk_size}")
        if self.recording.markers is not None:
            markers = self.recording.markers
            parts.append(f"{self.options.markers_topic} {len(markers.marker_names)} markers at "
                         f"{markers.frame_rate:g} Hz")
        return "; ".join(parts)

    def _start_when_ready(self) -> None:
        publishers = [p for p in (self.signal_publisher, self.markers_publisher) if p is not None]
        ready = all(p.get_subscription_count() >= self.options.wait_for_subscribers
                    for p in publishers)
        waited = (self.get_clock().now() - self._waiting_since).nanoseconds * 1e-9
        if not ready and waited < self.options.wait_timeout:
            return
        if self._ready_since is None:
            self._ready_since = waited
            if not ready:
                self.get_logger().warn("starting without all expected subscribers")
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

    def close(self) -> None:
        self.pacer.stop()


def main() -> None:
    main_for(ReplayNode, "replay_node")


if __name__ == "__main__":
    main()
