"""The IK node's outputs for one solved frame: joint states, marker residuals, quality, and the
segment frames on /tf. Every message carries the marker frame's capture stamp; a frame's quality
is published first, so that a consumer holds it when the frame's joint states arrive."""
from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from biosig_ros.msg import IkQuality, MarkerResiduals, MarkerSet
from biosig_ros.processing.ik_model import IkModel
from biosig_ros.processing.ik_solver import IkResult
from biosig_ros.ros.cdr_template import CdrTemplate
from biosig_ros.ros.qos import output_qos

# ik/quality: reliable (a default-QoS subscriber connects and loses none on a healthy link) and
# shallow: a consumer that falls behind gets the newest frames' quality, not a backlog.
QUALITY_DEPTH = 10

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
        self._quality = node.create_publisher(IkQuality, "ik/quality",
                                              output_qos(QUALITY_DEPTH))
        self._tf = None
        if publish_tf:
            if TFMessage is None:
                from biosig_ros.errors import ConfigError
                raise ConfigError("parameter 'publish_tf': tf2_msgs is not installed (run "
                                  "tools/bootstrap.sh, or install ros-<distro>-tf2-msgs)")
            # /tf stays absolute (ROS convention); reliable, as tf2's listeners subscribe.
            self._tf = node.create_publisher(TFMessage, "/tf", output_qos(100))
            self._tf_message = TFMessage(transforms=[
                unchecked_transform(frame_id, tf_prefix + name) for name in model.segment_names])
            count = len(model.segment_names)
            # The sentinels it writes into the message are overwritten before any publish.
            self._tf_template = CdrTemplate.build(self._tf_message, _mark_transforms,
                                                  7 * count, 2 * count)

    def publish(self, msg: MarkerSet, result: IkResult) -> None:
        stamp = msg.header.stamp
        # Quality first, so that it is on its way before the pose it qualifies (DDS orders
        # one writer's samples only: a consumer pairs the two by stamp, docs/topics.md).
        self._quality.publish(quality_message(msg, result, self._dof_names, self.frame_id))
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
        if self._tf is not None:
            self._publish_tf(stamp, result.q)

    def _publish_tf(self, stamp, q: np.ndarray) -> None:
        frames = self.model.segment_frames(q)
        poses = np.concatenate(
            [frames[:, :3, 3], matrices_to_quaternions(frames[:, :3, :3])], axis=1).ravel()
        stamps = np.tile(np.array([stamp.sec, stamp.nanosec], dtype=np.int64), len(frames))
        if self._tf_template is not None:  # the serialized layout, numbers rewritten
            self._tf.publish(self._tf_template.fill(poses, stamps))
        else:
            _mark_transforms(self._tf_message, poses.tolist(), stamps.tolist())
            self._tf.publish(self._tf_message)


def _mark_transforms(message, doubles: list, ints: list, floats: list = ()) -> None:
    """Write values into the transforms, in the order _publish_tf gives them: per transform
    x y z, then qx qy qz qw; sec and nanosec of its stamp (also how the template's sentinels
    are placed)."""
    for i, transform in enumerate(message.transforms):
        translation, rotation = transform.transform.translation, transform.transform.rotation
        (translation.x, translation.y, translation.z,
         rotation.x, rotation.y, rotation.z, rotation.w) = doubles[7 * i:7 * i + 7]
        transform.header.stamp.sec, transform.header.stamp.nanosec = ints[2 * i:2 * i + 2]


def unchecked_transform(parent: str, child: str) -> TransformStamped:
    """A TransformStamped whose fields skip rclpy's per-assignment type checks: 36 segments x 9
    checked assignments per frame cost more than solving the frame (the values written are
    Python floats and ints from numpy, checked by construction)."""
    return TransformStamped(
        header=Header(stamp=Time(check_fields=False), frame_id=parent, check_fields=False),
        child_frame_id=child, check_fields=False,
        transform=Transform(translation=Vector3(check_fields=False),
                            rotation=Quaternion(check_fields=False), check_fields=False))


def matrices_to_quaternions(rotations: np.ndarray) -> np.ndarray:
    """Rotation matrices (n x 3 x 3) -> unit quaternions (n x 4, x y z w, w >= 0), from the
    largest of the four diagonal combinations (no precision loss near any axis)."""
    r = rotations
    diagonal = np.stack([1 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2],
                         1 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2],
                         1 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2],
                         1 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2]])
    largest = np.argmax(diagonal, axis=0)
    s = 2.0 * np.sqrt(np.maximum(diagonal[largest, np.arange(len(r))], 1e-300))
    a, b, c = r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]
    d, e, f = r[:, 0, 1] + r[:, 1, 0], r[:, 0, 2] + r[:, 2, 0], r[:, 1, 2] + r[:, 2, 1]
    candidates = np.stack([  # (x, y, z, w) for each choice of the largest component
        np.stack([a / s, b / s, c / s, s / 4]),
        np.stack([s / 4, d / s, e / s, a / s]),
        np.stack([d / s, s / 4, f / s, b / s]),
        np.stack([e / s, f / s, s / 4, c / s])])
    quaternions = candidates[largest, :, np.arange(len(r))]
    quaternions *= np.where(quaternions[:, 3:] < 0, -1.0, 1.0)
    return quaternions / np.linalg.norm(quaternions, axis=1, keepdims=True)


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
    quality.discontinuity = bool(result.discontinuity)
    quality.discontinuity_reason = result.discontinuity_reason
    quality.dofs_stepped = [dof_names[i] for i in result.stepped]
    quality.largest_rotation_step = float(result.largest_rotation_step)
    return quality
