"""trigno_emg_node: Delsys Trigno EMG (and optionally aux/IMU) from the Trigno Control Utility.

Publishes /emg/raw (SignalChunk, volts, selected slots) and, with aux_enabled, /emg/aux.
Parameters: biosig_ros.devices.trigno_client.TrignoSettings. The TCP client runs in its own
thread; when the TCU goes away the node logs it, reports ERROR on /diagnostics, keeps retrying
and resumes by itself, the running sample index jumping over the outage.
"""
from __future__ import annotations

import threading
import time

from rclpy.node import Node

from biosig_ros.devices.device_link import CONNECTING, STREAMING, LinkStatus
from biosig_ros.devices.trigno_client import TrignoClient, TrignoSettings
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg
from biosig_ros.ros.diagnostics import ERROR, OK, WARN, Diagnostics, link_level
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import output_qos
from biosig_ros.signals import SignalChunk
from biosig_ros.stream_stats import StreamStats

EMG_TOPIC = "emg/raw"
AUX_TOPIC = "emg/aux"
FRAME_ID = "trigno"
REPEAT_LOG_S = 10.0   # an unchanged connection error is logged again after this long


class TrignoEmgNode(Node):
    def __init__(self):
        super().__init__("trigno_emg")
        self.settings = declare_settings(self, TrignoSettings)
        s = self.settings
        self._emg_publisher = self.create_publisher(SignalChunkMsg, EMG_TOPIC, output_qos())
        self._aux_publisher = (self.create_publisher(SignalChunkMsg, AUX_TOPIC, output_qos())
                               if s.aux_enabled else None)
        self._diagnostics = Diagnostics(self, hardware_id=f"trigno@{s.host}:{s.command_port}")
        self._stats = StreamStats()
        self._stats_lock = threading.Lock()
        self._last_log = ("", 0.0)
        self._client = TrignoClient(s, self._on_emg, self._on_aux if s.aux_enabled else None,
                                    self._on_status)
        self.create_timer(1.0, self._update_diagnostics)
        emg_port, aux_port = s.data_ports
        self.get_logger().info(
            f"Trigno TCU {s.host} (command {s.command_port}, EMG {emg_port}"
            f"{f', aux {aux_port}' if s.aux_enabled else ''}, "
            f"{'legacy' if s.legacy else 'Avanti'} mode): slots {s.sensor_slots} as "
            f"{s.emg_channel_names} on {EMG_TOPIC}")
        self._client.start()

    def _on_emg(self, chunk: SignalChunk) -> None:
        with self._stats_lock:
            self._stats.update(chunk.first_sample_index, chunk.sample_count)
        self._publish(self._emg_publisher, chunk_to_msg(chunk, FRAME_ID))

    def _on_aux(self, chunk: SignalChunk) -> None:
        self._publish(self._aux_publisher, chunk_to_msg(chunk, FRAME_ID))

    def _publish(self, publisher, msg) -> None:
        # The client thread may still deliver a chunk while rclpy shuts down.
        if self.context.ok():
            publisher.publish(msg)

    def _on_status(self, status: LinkStatus) -> None:
        if not self.context.ok():
            return
        level = link_level(status)
        if level == OK and self._client.info.unpaired_slots:
            level = WARN
        self._diagnostics.set(level, status.message)
        logger = self.get_logger()
        if status.state == STREAMING:
            logger.info(status.message)
        elif level == ERROR and status.state != CONNECTING:
            previous, when = self._last_log
            now = time.monotonic()
            if status.message != previous or now - when > REPEAT_LOG_S:
                logger.error(f"{status.message} (retrying every {self.settings.retry_interval:g} s)")
                self._last_log = (status.message, now)

    def _update_diagnostics(self) -> None:
        status = self._client.status
        with self._stats_lock:
            stats = self._stats
            values = dict(state=status.state, rate_hz=stats.rate(), samples=stats.samples,
                          gaps=stats.gaps, missing_samples=stats.missing_samples,
                          sessions=status.sessions, failures=status.failures,
                          last_error=status.last_error or "-",
                          device_rate_hz=self._client.info.emg_rate,
                          unpaired_slots=self._client.info.unpaired_slots or "-")
        self._diagnostics.update_values(**values)

    def close(self) -> None:
        self._client.stop()


def main():
    main_for(TrignoEmgNode, "trigno_emg_node")


if __name__ == "__main__":
    main()
