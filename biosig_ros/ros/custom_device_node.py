"""The lifecycle node of any CustomDevice: give it the class, get a managed ROS 2 node.

    from biosig_ros.ros.custom_device_node import run_custom_device
    run_custom_device(MyAmplifier, "my_amplifier")      # the body of your executable

Parameters: the fields of the device's settings_type (sample_rate, channel_names, topic, ...
and your own) plus autostart and frame_id; SignalChunks on `topic` with the package's output
QoS; /diagnostics with rate, samples and losses (WARN while samples were lost in the last
window); configure = connect(), activate = stream, deactivate = stop_streaming(), cleanup =
disconnect() (biosig_ros.ros.device_node).
"""
from __future__ import annotations

import threading

from biosig_ros.devices.custom_device import CustomDevice
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg
from biosig_ros.ros.device_node import DeviceNode
from biosig_ros.ros.node_runner import main_for
from biosig_ros.signals import SignalChunk
from biosig_ros.stream_stats import StreamStats


class CustomDeviceNode(DeviceNode):
    """A DeviceNode publishing one CustomDevice's chunks."""

    def __init__(self, device_type: type[CustomDevice], name: str):
        self._device_type = device_type
        super().__init__(name, device_type.settings_type,
                         lambda s: f"{device_type.__name__}@{getattr(s, 'host', '-')}")
        self._publisher = self.publisher(SignalChunkMsg, self.settings.topic)
        self._stats = StreamStats()
        self._stats_lock = threading.Lock()
        self.get_logger().info(f"{device_type.__name__}: {len(self.settings.channel_names)} "
                               f"channels on {self._publisher.topic_name}")
        self.begin()

    def make_link(self) -> CustomDevice:
        return self._device_type(self.settings, self._on_chunk, self.on_link_status)

    def _on_chunk(self, chunk: SignalChunk) -> None:
        with self._stats_lock:
            self._stats.update(chunk.first_sample_index, chunk.sample_count)
        if self.context.ok():
            self._publisher.publish(chunk_to_msg(chunk, self.frame_id))

    def diagnostic_values(self) -> dict:
        with self._stats_lock:
            values = dict(rate_hz=self._stats.rate(), samples=self._stats.samples)
        if self.link is not None:
            lost = self.link.assembler.lost
            self.count_losses(lost, "samples")
            values["lost_samples"] = lost
        return values


def run_custom_device(device_type: type[CustomDevice], name: str) -> None:
    """Run `device_type` as the lifecycle node `name` until Ctrl-C (exit status 2 on a bad
    parameter)."""
    main_for(lambda: CustomDeviceNode(device_type, name), f"{name}_node")
