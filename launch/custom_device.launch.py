"""ros2 launch biosig_ros custom_device.launch.py  (the graph 'custom_device' of biosig_ros/graph_spec.py).

Without ROS 2 launch: python -m biosig_ros.graph custom_device
"""
from biosig_ros.ros.launch_graph import launch_description_for


def generate_launch_description():
    return launch_description_for("custom_device")
