"""assist_enable: call an assist node's ~/enable service from a shell without ros2cli (the
pip-wheel environment has none); with ROS 2 installed this equals
`ros2 service call /assist/enable std_srvs/srv/SetBool "{data: true}"`.

    assist_enable [--off] [--node /assist] [--timeout 10]

Prints the node's answer; exit status 0 when it did what was asked, 1 when it refused (e.g.
stale inputs), 2 when no such service answered.
"""
from __future__ import annotations

import argparse
import sys

import rclpy
from std_srvs.srv import SetBool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--off", action="store_true", help="disable instead of enable")
    parser.add_argument("--node", default="/assist", help="the assist node's full name")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
    args = parser.parse_args(rclpy.utilities.remove_ros_args(sys.argv)[1:])
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("assist_enable")
    service = f"{args.node.rstrip('/')}/enable"
    try:
        client = node.create_client(SetBool, service)
        if not client.wait_for_service(timeout_sec=args.timeout):
            print(f"assist_enable: no service {service} within {args.timeout:g} s", file=sys.stderr)
            sys.exit(2)
        future = client.call_async(SetBool.Request(data=not args.off))
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        if not future.done():
            print(f"assist_enable: {service} did not answer", file=sys.stderr)
            sys.exit(2)
        response = future.result()
        print(f"{service}: {response.message}")
        sys.exit(0 if response.success else 1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
