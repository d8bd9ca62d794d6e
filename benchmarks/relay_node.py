"""A bare relay node, the latency baseline of benchmarks/emg_processing.py: every /emg/raw
message is republished unchanged on /emg/envelope, with the same QoS as emg_processing_node,
started the way every node of the package is (node_runner.main_for).

    python -m benchmarks.relay_node [--node relay|emg_processing] --ros-args -r __node:=relay

--node emg_processing runs emg_processing_node through the same entry point.
"""
from __future__ import annotations

import argparse
import sys

from rclpy.node import Node

from biosig_ros.msg import SignalChunk
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.qos import input_qos, output_qos


class RelayNode(Node):
    def __init__(self):
        super().__init__("relay")
        # The node's QoS (qos.py): a reliable output costs more per message than a best-effort
        # one, and that is not the processing's cost.
        publisher = self.create_publisher(SignalChunk, "/emg/envelope", output_qos())
        self.create_subscription(SignalChunk, "/emg/raw", publisher.publish, input_qos())
        self.get_logger().info("ready: /emg/raw -> /emg/envelope unchanged")


def main() -> None:
    own = sys.argv[1:sys.argv.index("--ros-args")] if "--ros-args" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", choices=("relay", "emg_processing"), default="relay")
    args = parser.parse_args(own)
    if args.node == "relay":
        make_node = RelayNode
    else:
        from biosig_ros.nodes.emg_processing_node import EmgProcessingNode as make_node
    main_for(make_node, f"{args.node}_node")


if __name__ == "__main__":
    main()
