"""A bare relay node, the latency baseline of benchmarks/emg_processing.py: every /emg/raw
message is republished unchanged on /emg/envelope, with the same QoS and executor as
emg_processing_node, so that the difference between the two is the processing.

Run: python -m benchmarks.relay_node --ros-args -r __node:=relay
"""
from __future__ import annotations

from rclpy.node import Node

from biosig_ros.msg import SignalChunk
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.qos import sensor_qos


class RelayNode(Node):
    def __init__(self):
        super().__init__("relay")
        publisher = self.create_publisher(SignalChunk, "/emg/envelope", sensor_qos())
        self.create_subscription(SignalChunk, "/emg/raw", publisher.publish, sensor_qos())
        self.get_logger().info("ready: /emg/raw -> /emg/envelope unchanged")


def main() -> None:
    main_for(RelayNode, "relay_node")


if __name__ == "__main__":
    main()
