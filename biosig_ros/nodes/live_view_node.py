"""live_view: the package's topics drawn in a web browser, and as standard viewer messages.

Subscribes to the EMG envelope and raw EMG (SignalChunk), the markers (MarkerSet), the joint
states (JointState) and torque_node's joint torques (JointState efforts); serves a page on http://127.0.0.1:8080/ (biosig_ros.viewers: decimation,
framing, HTTP server and refresh on their own threads: the callbacks here only hand data over).
It also publishes what RViz, Foxglove, PlotJuggler and rqt_plot draw without the package's
messages: viz/markers (MarkerArray: marker spheres, skeleton lines) and emg/envelope_channels
(JointState, one name per EMG channel). See docs/live_view.md.
"""
from __future__ import annotations

import time

import numpy as np
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from visualization_msgs.msg import MarkerArray

from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.ros.cdr_reader import MarkerFrameView, MarkerSetReader
from biosig_ros.ros.conversions import time_to_seconds
from biosig_ros.ros.diagnostics import OK, WARN, Diagnostics, loss_window
from biosig_ros.ros.node_context import node_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.polled_intake import PolledIntake
from biosig_ros.ros.qos import input_qos, output_qos
from biosig_ros.ros.viz_messages import ChannelStates, MarkerArrays
from biosig_ros.viewers.live_view import LiveView, LiveViewSettings
from biosig_ros.viewers.skeleton import Skeleton
from biosig_ros.viewers.streams import RateGate
from biosig_ros.viewers.torques import TORQUE_STREAMS

_RAW_CHECK_S = 0.25   # how soon raw EMG starts after a browser asks for it
_RAW_LINGER_S = 10.0  # kept this long after the last browser showing it went
# rclpy gives every publisher two QoS event handlers that the executor walks at each wake-up;
# these publishers are reliable and volatile, which every subscriber accepts.
_NO_EVENTS_PUB = PublisherEventCallbacks(use_default_callbacks=False)


def _chunk_data(msg: SignalChunk) -> np.ndarray:
    channels = len(msg.channel_names)
    data = np.frombuffer(msg.data, dtype=np.float64)
    if channels == 0 or data.size != msg.sample_count * channels:
        raise ValueError(f"{data.size} values for {msg.sample_count} samples x {channels} "
                         "channels")
    return data.reshape(msg.sample_count, channels)


class LiveViewNode(Node):
    """Topics in, browser page and viewer messages out."""

    def __init__(self):
        super().__init__("live_view")
        self.settings = settings = declare_settings(self, LiveViewSettings)
        self.skeleton = Skeleton.load(settings.model_path) if settings.model_path else None
        topics = settings.topics()
        shown = {key: self.resolve_topic_name(name) if name else ""
                 for key, name in topics.items()}
        # Topics are read in batches (see ros/polled_intake.py), by default by the view's
        # refresh thread just before each refresh: the callbacks below run there, never on
        # the executor.
        self._intake = PolledIntake(self, settings.intake_rate, self._bad)
        self.view = LiveView(settings, self.skeleton, shown, before_refresh=(
            self._intake.poll_guarded if not settings.intake_rate else None),
            clock=node_seconds(self))
        self._bad_messages = 0
        self._last_bad = ""

        self._viz = MarkerArrays(settings.frame_id, settings.marker_diameter)
        self._viz_publisher = None
        if settings.viz_markers_topic:
            self._viz_publisher = self.create_publisher(
                MarkerArray, settings.viz_markers_topic, output_qos(),
                event_callbacks=_NO_EVENTS_PUB)
        self._channel_publisher = None
        if settings.envelope_channels_topic:
            self._channel_publisher = self.create_publisher(
                JointState, settings.envelope_channels_topic, output_qos(),
                event_callbacks=_NO_EVENTS_PUB)
        self._viz_gate = RateGate(settings.viz_rate)
        self._channel_states = ChannelStates(settings.channel_rate)
        self._marker_reader = MarkerSetReader()
        self._pose = None  # (q, (sec, nanosec)) of the newest joint states not yet in viz

        # Marker frames are read from their bytes (ros/cdr_reader.py): rclpy's conversion of
        # every Point was most of this node's intake.
        subscriptions = ((SignalChunk, settings.envelope_topic, self._on_envelope, False),
                         (MarkerSet, settings.markers_topic, self._on_markers, True),
                         (JointState, settings.joints_topic, self._on_joints, False))
        subscriptions += tuple(
            (JointState, topics[stream], lambda msg, s=stream: self._on_torque(s, msg), False)
            for stream in TORQUE_STREAMS)  # '' when no torque DoF is plotted
        for msg_type, topic, callback, raw in subscriptions:
            if topic:
                self._intake.subscribe(msg_type, topic, callback, input_qos(), raw=raw)
        # Raw EMG (the heaviest stream) is taken only while a browser shows it.
        self._raw_subscription = None
        self._raw_unwatched_since = 0.0
        self._diagnostics = Diagnostics(self)
        self._losses = loss_window(self)
        self._counted: dict[str, int] = {}  # losses already recorded, per source
        self.create_timer(1.0, self._update_diagnostics)
        self.create_timer(_RAW_CHECK_S, self._follow_raw_viewers)
        url = self.view.start()
        model = f"skeleton of {self.skeleton.path.name}" if self.skeleton else "no skeleton"
        outputs = ["browser"] + [self.resolve_topic_name(topic) for topic in (
            settings.viz_markers_topic, settings.envelope_channels_topic) if topic]
        self.get_logger().info(
            f"ready: live view at {url} ({model}; "
            f"{', '.join(n for n in shown.values() if n)} -> {', '.join(outputs)})")

    def _follow_raw_viewers(self) -> None:
        """Subscribe to raw EMG while a browser asks for it (and a while after)."""
        if not self.settings.raw_topic:
            return
        wanted = any(c.raw for c in self.view.server.clients())
        now = time.monotonic()
        if wanted:
            self._raw_unwatched_since = now
            if self._raw_subscription is None:
                self._raw_subscription = self._intake.subscribe(
                    SignalChunk, self.settings.raw_topic, self._on_raw, input_qos())
        elif (self._raw_subscription is not None
              and now - self._raw_unwatched_since > _RAW_LINGER_S):
            self._intake.unsubscribe(self._raw_subscription)
            self._raw_subscription = None

    # --- topic callbacks (intake thread): hand over, publish the viewer messages -----------

    def _bad(self, topic: str, error: Exception) -> None:
        self._bad_messages += 1
        text = f"{topic}: message ignored: {error}"
        if text != self._last_bad:
            self.get_logger().warning(text)
            self._last_bad = text

    def _on_signal(self, stream: str, msg: SignalChunk) -> np.ndarray | None:
        try:
            data = _chunk_data(msg)
        except ValueError as error:
            self._bad(stream, error)
            return None
        self.view.state.on_signal(stream, data, msg.first_sample_index,
                                  time_to_seconds(msg.header.stamp), msg.sample_rate,
                                  list(msg.channel_names), msg.unit)
        return data

    def _on_envelope(self, msg: SignalChunk) -> None:
        data = self._on_signal("envelope", msg)
        if data is not None and self._channel_publisher is not None:
            for state in self._channel_states.messages(msg, data):
                self._channel_publisher.publish(state)

    def _on_raw(self, msg: SignalChunk) -> None:
        self._on_signal("raw", msg)

    def _on_markers(self, data: bytes) -> None:
        try:
            frame = self._marker_reader.read(data)
        except ValueError:
            if data[:2] == b"\x00\x01":
                raise  # malformed: counted and reported by _bad
            frame = MarkerFrameView.of_message(deserialize_message(data, MarkerSet))
        stamp = frame.sec + frame.nanosec * 1e-9
        self.view.state.on_markers(frame.names, frame.positions, frame.occluded,
                                   frame.frame_number, stamp)
        if self._viz_publisher is not None and self._viz_gate.due(stamp):
            self._viz.update_markers(frame.names, frame.positions, frame.occluded,
                                     (frame.sec, frame.nanosec))
            self._publish_viz()

    def _on_joints(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            self._bad("joints", ValueError(f"{len(msg.name)} names, {len(msg.position)} "
                                           "positions"))
            return
        stamp = time_to_seconds(msg.header.stamp)
        q = self.view.state.on_joints(list(msg.name), msg.position, stamp)
        if q is not None:
            self._pose = (q, (msg.header.stamp.sec, msg.header.stamp.nanosec))
            # Without markers, the joint states pace the MarkerArray.
            if (self._viz_publisher is not None and not self.settings.markers_topic
                    and self._viz_gate.due(stamp)):
                self._publish_viz()

    def _on_torque(self, stream: str, msg: JointState) -> None:
        try:
            self.view.state.on_torque(stream, list(msg.name), msg.effort,
                                      time_to_seconds(msg.header.stamp))
        except ValueError as error:
            self._bad(stream, error)

    def _publish_viz(self) -> None:
        """One MarkerArray: the markers as they are, the skeleton at the newest pose."""
        if self._pose is not None:
            q, stamp = self._pose
            self._pose = None
            self._viz.update_skeleton(stamp, self.skeleton.line_points(self.skeleton.origins(q)))
        self._viz_publisher.publish(self._viz.array())

    # --- diagnostics --------------------------------------------------------------------

    def _count_loss(self, what: str, total: int) -> None:
        self._losses.record(total - self._counted.get(what, 0), what)
        self._counted[what] = total

    def _update_diagnostics(self) -> None:
        clients = self.view.server.clients()
        self._count_loss("frames for slow browsers", self.view.server.frames_dropped)
        for stream, health in self.view.state.health.items():
            self._count_loss(f"{stream} gaps", health.stats.missing_samples)
        problems = [text for text in (
            self._losses.message(),
            f"{self.view.encode_errors} frames failed: {self.view.last_error}"
            if self.view.encode_errors else "",
            f"{self._bad_messages} messages ignored: {self._last_bad}"
            if self._bad_messages else "") if text]
        self._diagnostics.set(
            WARN if problems else OK, "; ".join(problems) or f"serving {self.view.url}",
            url=self.view.url, browsers=len(clients), frames_sent=self.view.frames_sent,
            frames_dropped_for_slow_browsers=self.view.server.frames_dropped,
            bad_messages=self._bad_messages, raw_emg_taken=self._raw_subscription is not None)

    def close(self) -> None:
        self.view.close()
        self._intake.close()


def main() -> None:
    main_for(LiveViewNode, "live_view")


if __name__ == "__main__":
    main()
