"""vicon_markers_node: one subject's Vicon markers on `markers` (MarkerSet, metres, per frame).

A lifecycle node (biosig_ros.ros.device_node): configure connects to the DataStream server and
resolves subject, markers and device outputs; activate publishes; deactivate stops publishing
(the SDK connection stays); cleanup disconnects. Backend `sdk` uses Vicon's DataStream SDK
client: Vicon's Python wrapper vicon_dssdk if importable, else Vicon's client library built by
tools/bootstrap.sh (logged at start, with its version); backend `simulator` plays a recording
through the API stand-in, in-process. Occluded markers
are flagged and NaN; frame_number is Vicon's, so dropped frames show as gaps and are counted.
With analog_device set, that device's outputs go to `vicon/analog` (SignalChunk). Parameters:
biosig_ros.devices.vicon_client.ViconSettings plus autostart and frame_id.
"""
from __future__ import annotations

import threading
import time

from biosig_ros.devices.device_link import STREAMING, LinkStatus
from biosig_ros.devices.vicon_client import ViconClient, ViconSettings, create_adapter
from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg
from biosig_ros.ros.device_node import DeviceNode
from biosig_ros.ros.diagnostics import ERROR
from biosig_ros.ros.node_runner import main_for
from biosig_ros.signals import MarkerFrame, SignalChunk
from biosig_ros.stream_stats import StreamStats

MARKERS_TOPIC = "markers"
ANALOG_TOPIC = "vicon/analog"


class ViconMarkersNode(DeviceNode):
    def __init__(self):
        super().__init__("vicon_markers", ViconSettings, lambda s: f"vicon@{s.host}" + (
            " (simulator)" if s.backend == "simulator" else ""))
        s = self.settings
        # ConfigError here (no SDK, bad recording) exits with 2
        self._adapter = create_adapter(s, self.get_logger().warning)
        self._markers_publisher = self.publisher(MarkerSet, MARKERS_TOPIC)
        self._analog_publisher = (self.publisher(SignalChunkMsg, ANALOG_TOPIC)
                                  if s.analog_device else None)
        self._stats = StreamStats()
        self._stats_lock = threading.Lock()
        self._occluded_last = 0
        self.get_logger().info(f"Vicon client: {self._adapter.description}")
        self.get_logger().info(
            f"Vicon {s.backend} backend, server {s.host}, subject "
            f"{s.subject or '(first streamed)'}, markers "
            f"{s.marker_names or '(all)'} on {self._markers_publisher.topic_name}"
            + (f", device '{s.analog_device}' on {self._analog_publisher.topic_name}"
               if s.analog_device else ""))
        self.begin()

    def make_link(self) -> ViconClient:
        return ViconClient(self.settings, self._adapter, self._on_frame,
                           self._on_analog if self.settings.analog_device else None,
                           self.on_link_status)

    def _on_frame(self, frame: MarkerFrame) -> None:
        with self._stats_lock:
            self._stats.update(frame.frame_number, 1)
            self._occluded_last = int(frame.occluded.sum())
        if self.context.ok():
            self._markers_publisher.publish(frame_to_msg(frame, self.frame_id))

    def _on_analog(self, chunk: SignalChunk) -> None:
        if self.context.ok():
            self._analog_publisher.publish(chunk_to_msg(chunk, self.frame_id))

    def assess(self, status: LinkStatus) -> tuple[int, str]:
        # A call blocked inside the SDK cannot report; the age of the last frame still can
        # (counted from the start of this session at most).
        with self._stats_lock:
            stale = self._stats.seconds_since_last()
        if status.state == STREAMING and stale is not None:
            stale = min(stale, time.time() - status.since)
            if stale > self.settings.frame_timeout:
                return ERROR, f"no frame for {stale:.1f} s"
        return super().assess(status)

    def diagnostic_values(self) -> dict:
        link = self.link
        with self._stats_lock:
            values = dict(frame_rate_hz=self._stats.rate(), frames=self._stats.samples,
                          occluded_markers=self._occluded_last)
        if link is not None:
            dropped = link.dropped_frames
            self.count_losses(dropped, "frames")
            values.update(dropped_frames=dropped,
                          last_frame_number=link.last_frame_number or "-")
        return values


def main():
    main_for(ViconMarkersNode, "vicon_markers_node")


if __name__ == "__main__":
    main()
