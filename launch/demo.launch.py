"""ros2 launch biosig_ros demo.launch.py  (the graph 'demo' of biosig_ros/graph_spec.py).

Without ROS 2 launch: python -m biosig_ros.graph demo
"""
from biosig_ros.ros.launch_graph import launch_description_for


def generate_launch_description():
    return launch_description_for("demo")
