"""ros2 launch biosig_ros lab.launch.py  (the graph 'lab' of biosig_ros/graph_spec.py).

Without ROS 2 launch: python -m biosig_ros.graph lab
"""
from biosig_ros.ros.launch_graph import launch_description_for


def generate_launch_description():
    return launch_description_for("lab")
