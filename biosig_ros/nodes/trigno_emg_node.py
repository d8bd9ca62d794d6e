"""trigno_emg_node: Delsys Trigno EMG (and optionally aux/IMU) from the Trigno Control Utility.

A lifecycle node (biosig_ros.ros.device_node): configure connects to the TCU and checks rate and
paired slots, activate sends START and publishes `emg/raw` (SignalChunk, volts, selected slots)
and, with aux_enabled, `emg/aux`; deactivate sends STOP; cleanup disconnects. Parameters:
biosig_ros.devices.trigno_client.TrignoSettings plus autostart and frame_id. When the TCU goes
away while active, the node logs it, reports ERROR on /diagnostics, retries and resumes by
itself, the running sample index jumping over the outage (or over a deactivated pause).
"""
from __future__ import annotations

import threading

from biosig_ros.devices.device_link import LinkStatus
from biosig_ros.devices.trigno_client import TrignoClient, TrignoSettings
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg
from biosig_ros.ros.device_node import DeviceNode
from biosig_ros.ros.diagnostics import OK, WARN
from biosig_ros.ros.node_runner import main_for
from biosig_ros.signals import SignalChunk
from biosig_ros.stream_stats import StreamStats

EMG_TOPIC = "emg/raw"
AUX_TOPIC = "emg/aux"


class TrignoEmgNode(DeviceNode):
    def __init__(self):
        super().__init__("trigno_emg", TrignoSettings,
                         lambda s: f"trigno@{s.host}:{s.command_port}")
        s = self.settings
        self._emg_publisher = self.publisher(SignalChunkMsg, EMG_TOPIC)
        self._aux_publisher = self.publisher(SignalChunkMsg, AUX_TOPIC) if s.aux_enabled else None
        self._stats = StreamStats()
        self._stats_lock = threading.Lock()
        emg_port, aux_port = s.data_ports
        self.get_logger().info(
            f"Trigno TCU {s.host} (command {s.command_port}, EMG {emg_port}"
            f"{f', aux {aux_port}' if s.aux_enabled else ''}, "
            f"{'legacy' if s.legacy else 'Avanti'} mode): slots {s.sensor_slots} as "
            f"{s.emg_channel_names} on {self._emg_publisher.topic_name}")
        self.begin()

    def make_link(self) -> TrignoClient:
        s = self.settings
        return TrignoClient(s, self._on_emg, self._on_aux if s.aux_enabled else None,
                            self.on_link_status)

    def _on_emg(self, chunk: SignalChunk) -> None:
        with self._stats_lock:
            self._stats.update(chunk.first_sample_index, chunk.sample_count)
        self._publish(self._emg_publisher, chunk)

    def _on_aux(self, chunk: SignalChunk) -> None:
        self._publish(self._aux_publisher, chunk)

    def _publish(self, publisher, chunk: SignalChunk) -> None:
        # The client thread may still deliver a chunk while rclpy shuts down.
        if self.context.ok():
            publisher.publish(chunk_to_msg(chunk, self.frame_id))

    def apply_settings(self, settings: TrignoSettings, changed: list[str]) -> None:
        if self.link is not None:
            self.link.set_publish_rate(settings.publish_rate)

    def assess(self, status: LinkStatus) -> tuple[int, str]:
        level, message = super().assess(status)
        link = self.link
        if level == OK and link is not None and link.info.unpaired_slots:
            level = WARN
        return level, message

    def diagnostic_values(self) -> dict:
        link, stats = self.link, self._stats
        with self._stats_lock:
            values = dict(rate_hz=stats.rate(), samples=stats.samples, gaps=stats.gaps,
                          index_jump_samples=stats.missing_samples)
        if link is not None:
            lost = link.emg.lost
            self.count_losses(lost, "EMG samples")
            values.update(device_rate_hz=link.info.emg_rate, lost_samples=lost,
                          unpaired_slots=link.info.unpaired_slots or "-")
        return values


def main():
    main_for(TrignoEmgNode, "trigno_emg_node")


if __name__ == "__main__":
    main()
