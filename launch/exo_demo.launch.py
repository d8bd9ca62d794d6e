"""ros2 launch biosig_ros exo_demo.launch.py  (the graph 'exo_demo' of biosig_ros/graph_spec.py).

Without ROS 2 launch: python -m biosig_ros.graph exo_demo
"""
from biosig_ros.ros.launch_graph import launch_description_for


def generate_launch_description():
    return launch_description_for("exo_demo")
