"""A bare relay node, the latency baseline of benchmarks/emg_processing.py: every /emg/raw
message is republished unchanged on /emg/envelope, with the same QoS as emg_processing_node.

    python -m benchmarks.relay_node [--executor multi|single] [--node relay|emg_processing] \
        --ros-args -r __node:=relay

--executor multi (default) runs the node with biosig_ros.ros.node_runner.main_for, as every
node of the package runs; --executor single spins it with rclpy's SingleThreadedExecutor, which
isolates the node's own work from the cost of the multi-threaded executor (measured: several
times the CPU of the single-threaded one at 100 messages/s). --node emg_processing runs
emg_processing_node the same way (its MVC service needs the multi-threaded executor; the
benchmark does not call it).
"""
from __future__ import annotations

import argparse
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
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


def spin_single_threaded(make_node) -> None:
    rclpy.init(args=sys.argv)
    node = make_node()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main() -> None:
    own = sys.argv[1:sys.argv.index("--ros-args")] if "--ros-args" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=("multi", "single"), default="multi")
    parser.add_argument("--node", choices=("relay", "emg_processing"), default="relay")
    args = parser.parse_args(own)
    if args.node == "relay":
        make_node = RelayNode
    else:
        from biosig_ros.nodes.emg_processing_node import EmgProcessingNode as make_node
    if args.executor == "multi":
        main_for(make_node, f"{args.node}_node")
    else:
        spin_single_threaded(make_node)


if __name__ == "__main__":
    main()
