"""The IK node's outputs for one solved frame: joint states, marker residuals, quality, and the
segment frames on /tf. Every message carries the marker frame's capture stamp."""
from __future__ import annotations

import array

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState

from biosig_ros.msg import IkQuality, MarkerResiduals, MarkerSet
from biosig_ros.processing.ik_model import IkModel
from biosig_ros.processing.ik_solver import IkResult
from biosig_ros.ros.qos import output_qos

try:  # a ROS 2 install has it; the wheel set-up builds tools/tf2_msgs
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - bootstrap builds it
    TFMessage = None


class IkOutputs:
    """Publishers of ik/joint_states, ik/marker_residuals, ik/quality and (publish_tf) /tf."""

    def __init__(self, node: Node, model: IkModel, frame_id: str, publish_tf: bool,
                 tf_prefix: str):
        self.model = model
        self.frame_id = frame_id
        self._dof_names = list(model.dof_names)
        self._marker_names = list(model.marker_names)
        self._joints = node.create_publisher(JointState, "ik/joint_states", output_qos())
        self._residuals = node.create_publisher(MarkerResiduals, "ik/marker_residuals",
                                                output_qos())
        self._quality = node.create_publisher(IkQuality, "ik/quality", output_qos())
        self._tf = None
        if publish_tf:
            if TFMessage is None:
                from biosig_ros.errors import ConfigError
                raise ConfigError("parameter 'publish_tf': tf2_msgs is not installed (run "
                                  "tools/bootstrap.sh, or install ros-<distro>-tf2-msgs)")
            # /tf stays absolute (ROS convention); reliable, as tf2's listeners subscribe.
            self._tf = node.create_publisher(TFMessage, "/tf", output_qos(100))
            self._tf_message = TFMessage(transforms=[
                TransformStamped(child_frame_id=tf_prefix + name)
                for name in model.segment_names])
            for transform in self._tf_message.transforms:
                transform.header.frame_id = frame_id

    def publish(self, msg: MarkerSet, result: IkResult) -> None:
        stamp = msg.header.stamp
        joints = JointState()
        joints.header.stamp = stamp
        joints.header.frame_id = self.frame_id
        joints.name = self._dof_names
        joints.position = array.array("d", result.q)
        joints.velocity = array.array("d", result.qdot)
        self._joints.publish(joints)

        residuals = MarkerResiduals()
        residuals.header.stamp = stamp
        residuals.header.frame_id = self.frame_id
        residuals.frame_number = msg.frame_number
        residuals.marker_names = self._marker_names
        residuals.residuals = array.array("d", result.residuals)
        residuals.mean_residual = float(result.mean_residual)
        self._residuals.publish(residuals)

        self._quality.publish(quality_message(msg, result, self._dof_names, self.frame_id))
        if self._tf is not None:
            self._publish_tf(stamp, result.q)

    def _publish_tf(self, stamp, q: np.ndarray) -> None:
        frames = self.model.segment_frames(q)
        origins = frames[:, :3, 3]
        quaternions = Rotation.from_matrix(frames[:, :3, :3]).as_quat()  # x, y, z, w
        for transform, origin, quaternion in zip(self._tf_message.transforms, origins,
                                                 quaternions):
            transform.header.stamp = stamp
            translation, rotation = transform.transform.translation, transform.transform.rotation
            translation.x, translation.y, translation.z = (float(v) for v in origin)
            rotation.x, rotation.y, rotation.z, rotation.w = (float(v) for v in quaternion)
        self._tf.publish(self._tf_message)


def quality_message(msg: MarkerSet, result: IkResult, dof_names: list[str],
                    frame_id: str) -> IkQuality:
    quality = IkQuality()
    quality.header.stamp = msg.header.stamp
    quality.header.frame_id = frame_id
    quality.frame_number = msg.frame_number
    quality.dofs_out_of_range = [dof_names[i] for i in result.out_of_range]
    quality.underdetermined_segments = list(result.underdetermined)
    quality.visible_markers = int(result.visible_markers)
    quality.frames_skipped = int(result.frames_skipped)
    quality.reinitialised = bool(result.event)
    quality.reinitialisation_reason = result.event_reason
    return quality
