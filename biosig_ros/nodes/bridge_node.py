"""bridge_node: serves the topics to biosiglive TCP clients and records them to `.bio` files.

Subscribes raw_device_topics / proc_device_topics (SignalChunk), marker_set_topics (MarkerSet)
and kinematics_topics (sensor_msgs/JointState); serves them with the biosiglive 2.0.3 protocol
on bind_address:port from its own thread; records them while recording (record_on_start, or
the services ~/start_recording (biosig_ros/srv/StartRecording) and ~/stop_recording
(std_srvs/srv/Trigger)). Socket and file writes never run on the executor's threads.
"""
from __future__ import annotations

import sys

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from biosig_ros.bridge.bio_recorder import RecorderError, RecorderSettings
from biosig_ros.bridge.core import BridgeCore
from biosig_ros.bridge.legacy_server import LegacyServer, ServerSettings
from biosig_ros.bridge.settings import BridgeSettings
from biosig_ros.errors import ConfigError
from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros import diagnostics
from biosig_ros.ros.conversions import msg_to_chunk, msg_to_frame, time_to_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import input_qos
from biosig_ros.srv import StartRecording


# The server thread shares the GIL with the executor thread, which runs Python most of the
# time at 400 messages/s; a thread waiting for the GIL gets it after at most the switch
# interval (5 ms by default), which would be the reply latency floor under load.
GIL_SWITCH_INTERVAL_S = 0.0005


class BridgeNode(Node):
    def __init__(self):
        super().__init__("bridge")
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.settings = declare_settings(self, BridgeSettings)
        self.server_settings = declare_settings(self, ServerSettings)
        self.recorder_settings = declare_settings(self, RecorderSettings)
        self.core = BridgeCore(self.settings, self.recorder_settings)
        self.server: LegacyServer | None = None

        qos = input_qos()
        self._topic_subscriptions = []
        for key, message_type, handler in (
                ("raw_device_data", SignalChunkMsg, self._signal_handler),
                ("proc_device_data", SignalChunkMsg, self._signal_handler),
                ("marker_set_data", MarkerSet, self._markers_handler),
                ("kinematics_data", JointState, self._joints_handler)):
            for index, topic in enumerate(self.core.sources[key]):
                try:
                    subscription = self.create_subscription(
                        message_type, topic, handler(key, index), qos)
                except Exception as error:  # noqa: BLE001 - rclpy's invalid-name exceptions
                    raise ConfigError(f"topic '{topic}' in a *_topics parameter: {error}") from None
                self._topic_subscriptions.append(subscription)
                # Recordings and logs name the topic as resolved in this node's namespace.
                self.core.sources[key][index] = subscription.topic_name

        self.create_service(StartRecording, "~/start_recording", self._start_recording)
        self.create_service(Trigger, "~/stop_recording", self._stop_recording)

        if self.settings.serve:
            self.server = LegacyServer(self.server_settings, self.core.answer,
                                       version=lambda: self.core.buffers.version).start()
            host, port = self.server.address
            self.get_logger().info(f"serving biosiglive clients on {host}:{port}")
        served = {k: v for k, v in self.core.sources.items() if v}
        self.get_logger().info("sources: " + "; ".join(f"{k} <- {', '.join(v)}" for k, v in served.items()))
        address = "" if self.server is None else "{}:{}".format(*self.server.address)
        self.diagnostics = diagnostics.Diagnostics(self, hardware_id=f"tcp://{address}")
        if self.settings.record_on_start:
            path = self.core.recorder.start()
            self.get_logger().info(f"recording to {path}")
        self.create_timer(1.0, self._report)

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
            self.core.on_joints(index, list(msg.name), msg.position,
                                time_to_seconds(msg.header.stamp))
        return on_joints

    # --- services -------------------------------------------------------------------------
    def _start_recording(self, request, response):
        try:
            path = self.core.recorder.start(request.path)
        except (RecorderError, ConfigError) as error:
            response.success, response.message = False, str(error)
            return response
        self.get_logger().info(f"recording to {path}")
        response.success, response.message, response.path = True, f"recording to {path}", str(path)
        return response

    def _stop_recording(self, request, response):
        recorder = self.core.recorder
        try:
            path = recorder.stop()
        except RecorderError as error:
            response.success, response.message = False, str(error)
            return response
        self.get_logger().info(f"recording stopped: {path}")
        response.success = True
        response.message = (f"{path}: {recorder.samples_recorded} samples in "
                            f"{recorder.records_written} records")
        return response

    # --- status ---------------------------------------------------------------------------
    def _report(self) -> None:
        recorder = self.core.recorder
        values = {"recording": str(recorder.path) if recorder.recording else "no",
                  "records_written": recorder.records_written}
        if self.server is not None:
            stats = self.server.stats
            values.update(replies=stats.replies, error_replies=stats.error_replies,
                          timeouts=stats.timeouts, open_connections=stats.open_connections,
                          last_error=stats.last_error)
        gaps = sum(s.gaps for s in self.core.stats.values())
        values["gaps"] = gaps
        waiting = self.core.buffers.waiting_for()
        if recorder.write_errors:
            level, message = diagnostics.ERROR, recorder.last_error
        elif waiting:
            level, message = diagnostics.WARN, "no data yet for " + ", ".join(waiting)
        else:
            level, message = diagnostics.OK, "serving" if self.server else "running"
        self.diagnostics.set(level, message, **values)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.core.recorder.recording:
            path = self.core.recorder.stop()
            self.get_logger().info(f"recording closed: {path}")


def main() -> None:
    main_for(BridgeNode, "bridge_node")


if __name__ == "__main__":
    main()
