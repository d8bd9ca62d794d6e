"""biosig_ros: real-time biosignals (EMG, motion capture) as ROS 2 topics.

The subpackages io, devices, processing and bridge are ROS-free; ros and nodes hold the thin
rclpy layer on top.
"""
import pkgutil

# When the source tree shadows the colcon install space (running from a checkout), the generated
# message modules (biosig_ros.msg, biosig_ros.srv) are still found in the install space.
__path__ = pkgutil.extend_path(__path__, __name__)
