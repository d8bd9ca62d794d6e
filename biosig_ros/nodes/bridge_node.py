"""bridge_node: serves the topics to biosiglive TCP clients and records them to `.bio` files.

Subscribes raw_device_topics / proc_device_topics (SignalChunk), marker_set_topics (MarkerSet),
kinematics_topics (sensor_msgs/JointState) and, for their frame numbers,
kinematics_index_topics (MarkerResiduals); serves them with the biosiglive 2.0.3 protocol on
bind_address:port from its own thread; records them while recording (record_on_start, or the
services ~/start_recording (biosig_ros/srv/StartRecording) and ~/stop_recording
(std_srvs/srv/Trigger)). Each topic is subscribed when it has publishers, with the MCAP
recorder's QoS policy, as raw bytes: the executor only queues them; an intake thread
deserializes them in order. Socket and file writes never run on the executor's threads.
Diagnostics: ERROR when the recording stopped by itself (disk guard, failed part) or writes
fail, WARN while an input stream had index gaps within the last window.
"""
from __future__ import annotations

import queue
import threading

from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState

from biosig_ros.bridge.bio_recorder import RecorderError, RecorderSettings
from biosig_ros.bridge.core import BridgeCore
from biosig_ros.bridge.legacy_server import LegacyServer, ServerSettings
from biosig_ros.bridge.settings import BridgeSettings
from biosig_ros.errors import ConfigError
from biosig_ros.msg import MarkerResiduals, MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros import diagnostics
from biosig_ros.ros.conversions import msg_to_chunk, msg_to_frame
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import recording_qos
from biosig_ros.nodes.recording_services import (
    recording_problem, recording_service, recording_values)


# How often topics without publishers yet are looked for (the MCAP recorder: 1 s).
DISCOVERY_PERIOD_S = 0.5
# Messages waiting for the intake thread: about 20 s of the demo's five topics at 100 Hz.
INTAKE_BACKLOG_MESSAGES = 10000


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class BridgeNode(Node):
    def __init__(self):
        super().__init__("bridge")
        self.settings = declare_settings(self, BridgeSettings)
        self.server_settings = declare_settings(self, ServerSettings)
        self.recorder_settings = declare_settings(self, RecorderSettings,
                                                  on_change=self._recorder_settings_changed)
        self.losses = diagnostics.loss_window(self)
        self.core = BridgeCore(self.settings, self.recorder_settings,
                               on_error=lambda message: self.get_logger().error(message))
        self.core.on_gap = self.losses.record
        self.server: LegacyServer | None = None

        # Each topic is subscribed once it has publishers, with the QoS the MCAP recorder uses
        # (reliable when they all offer it, same depth): the .bio loses nothing the MCAP keeps.
        self._topic_subscriptions = []
        self._pending: list[tuple[str, type, object]] = []   # (resolved topic, type, callback)
        # Bounded: under sustained overload the oldest backlog is not allowed to grow memory
        # for hours; what is refused is counted and shown on /diagnostics.
        self._intake: queue.Queue = queue.Queue(maxsize=INTAKE_BACKLOG_MESSAGES)
        self._intake_dropped = 0
        self._intake_thread = threading.Thread(target=self._run_intake, name="bridge-intake",
                                               daemon=True)
        self._intake_thread.start()
        for key, message_type, handler in (
                ("raw_device_data", SignalChunkMsg, self._signal_handler),
                ("proc_device_data", SignalChunkMsg, self._signal_handler),
                ("marker_set_data", MarkerSet, self._markers_handler),
                ("kinematics_data", JointState, self._joints_handler)):
            for index, topic in enumerate(self.core.sources[key]):
                # Recordings and logs name the topic as resolved in this node's namespace.
                self.core.sources[key][index] = self._resolve(topic)
                self._pending.append((self.core.sources[key][index], message_type,
                                      handler(key, index)))
                index_topic = self.settings.index_topic(index) if key == "kinematics_data" else ""
                if index_topic:
                    self._pending.append((self._resolve(index_topic), MarkerResiduals,
                                          self._numbers_handler(index)))
        self._subscribe_published()
        self.create_timer(DISCOVERY_PERIOD_S, self._subscribe_published)

        recording_service(self, self.core.recorder,
                          lambda: f"{self.core.recorder.samples_recorded} samples in "
                                  f"{self.core.recorder.records_written} records")

        if self.settings.serve:
            self.server = LegacyServer(self.server_settings, self.core.answer,
                                       version=lambda: self.core.buffers.version).start()
            host, port = self.server.address
            self.get_logger().info(f"serving biosiglive clients on {host}:{port}")
        served = {k: v for k, v in self.core.sources.items() if v}
        self.get_logger().info(
            "sources: " + "; ".join(f"{k} <- {', '.join(v)}" for k, v in served.items()))
        address = "" if self.server is None else "{}:{}".format(*self.server.address)
        self.diagnostics = diagnostics.Diagnostics(self, hardware_id=f"tcp://{address}")
        if self.settings.record_on_start:
            try:
                path = self.core.recorder.start()
                self.get_logger().info(f"recording to {path}")
            except (RecorderError, ConfigError) as error:  # serving goes on without recording
                self.core.recorder.stopped_by = f"not recording: {error}"
                self.get_logger().error(self.core.recorder.stopped_by)
        self.create_timer(1.0, self._report)

    def _queued(self, message_type, callback):
        """A raw subscription's callback: the executor only queues the bytes (as the MCAP
        recorder does), so that it takes every message from DDS as fast; the intake thread
        deserializes them and runs callback, in arrival order."""
        put = self._intake.put_nowait

        def on_bytes(data: bytes) -> None:
            try:
                put((message_type, callback, data))
            except queue.Full:
                self._intake_dropped += 1
        return on_bytes

    def _run_intake(self) -> None:
        failed: set[str] = set()
        while True:
            item = self._intake.get()
            if item is None:
                return
            message_type, callback, data = item
            try:
                callback(deserialize_message(data, message_type))
            except Exception as error:  # noqa: BLE001 - one bad message must not stop the rest
                kind = f"{message_type.__name__}: {type(error).__name__}"
                if kind not in failed:
                    failed.add(kind)
                    self.get_logger().error(f"a {message_type.__name__} message could not be "
                                            f"used: {type(error).__name__}: {error}")

    def _resolve(self, topic: str) -> str:
        try:
            return self.resolve_topic_name(topic)
        except Exception as error:  # noqa: BLE001 - rclpy's invalid-name exceptions
            raise ConfigError(f"topic '{topic}' in a *_topics parameter: {error}") from None

    def _subscribe_published(self) -> None:
        """Subscribe every pending topic that has publishers, as the MCAP recorder does."""
        waiting = []
        for topic, message_type, callback in self._pending:
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                waiting.append((topic, message_type, callback))
                continue
            qos = recording_qos(publishers)
            self._topic_subscriptions.append(self.create_subscription(
                message_type, topic, self._queued(message_type, callback), qos, raw=True))
            self.get_logger().info(f"subscribed {topic} ({qos.reliability.name.lower()}, depth "
                                   f"{qos.depth})")
        self._pending = waiting

    def _recorder_settings_changed(self, settings: RecorderSettings, changed) -> None:
        self.core.recorder.files = self.core.recorder.settings = settings

    # --- topics ---------------------------------------------------------------------------
    def _signal_handler(self, key: str, index: int):
        def on_chunk(msg: SignalChunkMsg) -> None:
            self.core.on_signal(key, index, msg_to_chunk(msg))
        return on_chunk

    def _markers_handler(self, key: str, index: int):
        def on_markers(msg: MarkerSet) -> None:
            self.core.on_markers(index, msg_to_frame(msg))
        return on_markers

    def _joints_handler(self, key: str, index: int):
        def on_joints(msg: JointState) -> None:
            self.core.on_joints(index, list(msg.name), msg.position, stamp_ns(msg))
        return on_joints

    def _numbers_handler(self, index: int):
        def on_residuals(msg: MarkerResiduals) -> None:
            self.core.on_frame_number(index, stamp_ns(msg), msg.frame_number)
        return on_residuals

    # --- status ---------------------------------------------------------------------------
    def _report(self) -> None:
        recorder = self.core.recorder
        values = recording_values(recorder)
        if self.server is not None:
            stats = self.server.stats
            values.update(replies=stats.replies, error_replies=stats.error_replies,
                          timeouts=stats.timeouts, evicted=stats.evicted,
                          open_connections=stats.open_connections, last_error=stats.last_error)
        values["gaps"] = sum(s.gaps for s in self.core.stats.values())
        values["missing"] = sum(s.missing_samples for s in self.core.stats.values())
        values["kinematics_index"] = "; ".join(p.source() for p in self.core.pairings)
        values["intake_backlog"] = self._intake.qsize()
        values["intake_dropped"] = self._intake_dropped
        waiting = self.core.buffers.waiting_for()
        problem, lost = recording_problem(recorder), self.losses.message()
        if problem:
            level, message = diagnostics.ERROR, problem
        elif lost:
            level, message = diagnostics.WARN, lost
        elif self._intake_dropped:
            level, message = diagnostics.WARN, (
                f"{self._intake_dropped} messages dropped: the intake backlog was full "
                f"({INTAKE_BACKLOG_MESSAGES} messages; the machine cannot keep up)")
        elif waiting:
            level, message = diagnostics.WARN, "no data yet for " + ", ".join(waiting)
        else:
            level, message = diagnostics.OK, "serving" if self.server else "running"
        self.diagnostics.set(level, message, **values)

    def close(self) -> None:
        try:  # what was taken before the end is still recorded
            self._intake.put(None, timeout=10)
        except queue.Full:
            self.get_logger().error("the intake backlog did not drain in 10 s at shutdown")
        self._intake_thread.join(timeout=10)
        if self.server is not None:
            self.server.stop()
        if self.core.recorder.recording:
            path = self.core.recorder.stop()
            self.get_logger().info(f"recording closed: {path}")


def main() -> None:
    main_for(BridgeNode, "bridge_node")


if __name__ == "__main__":
    main()
