"""vicon_markers_node: one subject's Vicon markers on /markers (MarkerSet, metres, per frame).

Backend `sdk` uses Vicon's DataStream SDK (vicon_dssdk); backend `simulator` plays a recording
through the same adapter, so this code is identical for both. Occluded markers are flagged and
NaN; frame_number is Vicon's. With analog_device set, that device's outputs go to /vicon/analog
(SignalChunk). Parameters: biosig_ros.devices.vicon_client.ViconSettings. When the server goes
away the node logs it, reports ERROR on /diagnostics, retries and resumes by itself.
"""
from __future__ import annotations

import threading
import time

from rclpy.node import Node

from biosig_ros.devices.device_link import CONNECTING, STREAMING, LinkStatus
from biosig_ros.devices.vicon_client import ViconClient, ViconSettings, create_adapter
from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg
from biosig_ros.ros.diagnostics import ERROR, OK, Diagnostics, link_level
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import output_qos
from biosig_ros.signals import MarkerFrame, SignalChunk
from biosig_ros.stream_stats import StreamStats

MARKERS_TOPIC = "markers"
ANALOG_TOPIC = "vicon/analog"
FRAME_ID = "vicon"
REPEAT_LOG_S = 10.0


class ViconMarkersNode(Node):
    def __init__(self):
        super().__init__("vicon_markers")
        self.settings = declare_settings(self, ViconSettings)
        s = self.settings
        adapter = create_adapter(s)     # ConfigError here (no SDK, bad recording) exits with 2
        self._markers_publisher = self.create_publisher(MarkerSet, MARKERS_TOPIC, output_qos())
        self._analog_publisher = (self.create_publisher(SignalChunkMsg, ANALOG_TOPIC, output_qos())
                                  if s.analog_device else None)
        self._diagnostics = Diagnostics(
            self, hardware_id=f"vicon@{s.host}" + (" (simulator)" if s.backend == "simulator" else ""))
        self._stats = StreamStats()
        self._stats_lock = threading.Lock()
        self._occluded_last = 0
        self._last_log = ("", 0.0)
        self._client = ViconClient(s, adapter, self._on_frame,
                                   self._on_analog if s.analog_device else None, self._on_status)
        self.create_timer(1.0, self._update_diagnostics)
        self.get_logger().info(
            f"Vicon {s.backend} backend, server {s.host}, subject "
            f"{s.subject or '(first streamed)'}, markers "
            f"{s.marker_names or '(all)'} on {MARKERS_TOPIC}"
            + (f", device '{s.analog_device}' on {ANALOG_TOPIC}" if s.analog_device else ""))
        self._client.start()

    def _on_frame(self, frame: MarkerFrame) -> None:
        with self._stats_lock:
            self._stats.update(frame.frame_number, 1)
            self._occluded_last = int(frame.occluded.sum())
        if self.context.ok():
            self._markers_publisher.publish(frame_to_msg(frame, FRAME_ID))

    def _on_analog(self, chunk: SignalChunk) -> None:
        if self.context.ok():
            self._analog_publisher.publish(chunk_to_msg(chunk, FRAME_ID))

    def _on_status(self, status: LinkStatus) -> None:
        if not self.context.ok():
            return
        level = link_level(status)
        self._diagnostics.set(level, status.message)
        if status.state == STREAMING:
            self.get_logger().info(status.message)
        elif level == ERROR and status.state != CONNECTING:
            previous, when = self._last_log
            now = time.monotonic()
            if status.message != previous or now - when > REPEAT_LOG_S:
                self.get_logger().error(
                    f"{status.message} (retrying every {self.settings.retry_interval:g} s)")
                self._last_log = (status.message, now)

    def _update_diagnostics(self) -> None:
        status = self._client.status
        with self._stats_lock:
            stale = self._stats.seconds_since_last()
            values = dict(state=status.state, frame_rate_hz=self._stats.rate(),
                          frames=self._stats.samples, dropped_frames=self._stats.missing_samples,
                          last_frame_number=self._client.last_frame_number or "-",
                          occluded_markers=self._occluded_last, sessions=status.sessions,
                          failures=status.failures, last_error=status.last_error or "-")
        self._diagnostics.update_values(**values)
        # A call blocked inside the SDK cannot report; the age of the last frame still can
        # (counted from the start of this session at most).
        if stale is not None:
            stale = min(stale, time.time() - status.since)
        if status.state == STREAMING and stale is not None and \
                stale > self.settings.frame_timeout:
            self._diagnostics.set(ERROR, f"no frame for {stale:.1f} s")
        elif status.state == STREAMING and self._diagnostics.level != OK:
            self._diagnostics.set(OK, status.message)

    def close(self) -> None:
        self._client.stop()


def main():
    main_for(ViconMarkersNode, "vicon_markers_node")


if __name__ == "__main__":
    main()
