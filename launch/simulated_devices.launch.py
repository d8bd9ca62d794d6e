"""ros2 launch biosig_ros simulated_devices.launch.py  (the graph 'simulated_devices' of biosig_ros/graph_spec.py).

Without ROS 2 launch: python -m biosig_ros.graph simulated_devices
"""
from biosig_ros.ros.launch_graph import launch_description_for


def generate_launch_description():
    return launch_description_for("simulated_devices")
