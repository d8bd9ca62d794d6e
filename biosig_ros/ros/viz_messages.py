"""Standard messages that ROS viewers draw without knowing the package's own messages.

- `MarkerArrays`: visualization_msgs/MarkerArray for RViz and Foxglove with two markers:
  the markers of a MarkerSet as one SPHERE_LIST (namespace "markers", id 0; point i is marker
  i of the MarkerSet and `text` lists their names, comma-separated; an occluded marker is
  hidden: fully transparent, at its last seen position, since RViz refuses a marker holding a
  NaN), and the skeleton as one LINE_LIST (namespace "skeleton", id 0), a pair of points per
  parent-child segment pair. Each marker carries the capture stamp of the message it was
  built from. One SPHERE per marker would cost 16 times the conversion work in rclpy (1.9 ms
  per array measured here, against 0.4 ms).
- `ChannelStates`: sensor_msgs/JointState per EMG sample kept by decimation (names = channel
  names, position = values, stamp = that sample's capture time): the per-channel form that
  rqt_plot, PlotJuggler and CEINMS-RT's ROS plugin read.

Both publish serialized bytes from a template of their layout (ros/cdr_template.py: the
layout only changes with the marker or channel names), rclpy's field-by-field conversion being
most of their cost; the messages themselves where no template can be built.
"""
from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from biosig_ros.msg import SignalChunk
from biosig_ros.ros.cdr_template import CdrTemplate
from biosig_ros.viewers.streams import decimation_step, picked_rows

MARKER_NAMESPACE = "markers"
SKELETON_NAMESPACE = "skeleton"
_LIFETIME = Duration(sec=1)  # a viewer clears what a stopped stream left behind
_RGB = (0.31, 0.76, 0.97)  # the markers' colour; alpha 1 shown, 0 hidden


class MarkerArrays:
    """The MarkerArray of the newest markers and skeleton, as bytes (or a message)."""

    def __init__(self, frame_id: str, diameter: float, line_width: float = 0.008):
        self.frame_id, self.diameter, self.line_width = frame_id, diameter, line_width
        self._names: tuple[str, ...] = ()
        self._last_seen = np.zeros((0, 3))
        self._ever_seen = np.zeros(0, dtype=bool)
        self._points = np.zeros((0, 3))
        self._alpha = np.zeros(0)
        self._marker_stamp = (0, 0)
        self._lines: np.ndarray | None = None  # pairs x 2 x 3
        self._line_stamp = (0, 0)
        self._layout: tuple | None = None
        self._template: CdrTemplate | None = None

    @property
    def has_skeleton(self) -> bool:
        return self._lines is not None

    def update_markers(self, names: tuple[str, ...], positions: np.ndarray,
                       occluded: np.ndarray, stamp: tuple[int, int]) -> None:
        """The spheres from a marker frame (markers x 3, metres; stamp as sec, nanosec)."""
        if names != self._names:
            self._names = tuple(names)
            self._last_seen = np.zeros((len(names), 3))
            self._ever_seen = np.zeros(len(names), dtype=bool)
        visible = ~np.asarray(occluded, dtype=bool) & np.isfinite(positions).all(axis=1)
        self._last_seen[visible] = positions[visible]
        self._ever_seen |= visible
        points = self._last_seen.copy()
        if not self._ever_seen.all():  # never seen yet: at the first marker seen (finite)
            first = np.flatnonzero(self._ever_seen)
            points[~self._ever_seen] = points[first[0]] if len(first) else 0.0
        self._points, self._alpha, self._marker_stamp = points, visible.astype(float), stamp

    def update_skeleton(self, stamp: tuple[int, int], line_points: np.ndarray) -> None:
        """The lines: line_points is pairs x 2 x 3 (parent origin, child origin)."""
        self._lines, self._line_stamp = np.asarray(line_points, dtype=float), stamp

    def array(self) -> bytes | MarkerArray:
        """The spheres and, once a pose is known, the skeleton."""
        lines = self._lines.reshape(-1, 3) if self._lines is not None else None
        layout = (self._names, None if lines is None else len(lines))
        if layout != self._layout:
            self._layout = layout
            self._template = CdrTemplate.build(self._message(lines), self._mark,
                                               *self._counts(lines))
        doubles = self._points.ravel() if lines is None else np.concatenate(
            [self._points.ravel(), lines.ravel()])
        ints = self._marker_stamp + (() if lines is None else self._line_stamp)
        if self._template is not None:
            return self._template.fill(doubles, np.array(ints), self._alpha)
        message = self._message(lines)
        self._mark(message, doubles.tolist(), list(ints), self._alpha.tolist())
        return message

    def _counts(self, lines) -> tuple[int, int, int]:
        """(doubles, ints, floats) of the layout: points; stamps; sphere alphas."""
        line_count = 0 if lines is None else len(lines)
        return (3 * (len(self._names) + line_count), 2 if lines is None else 4,
                len(self._names))

    def _message(self, lines) -> MarkerArray:
        spheres = self._marker(MARKER_NAMESPACE, Marker.SPHERE_LIST)
        spheres.scale.x = spheres.scale.y = spheres.scale.z = self.diameter
        spheres.color = ColorRGBA(r=_RGB[0], g=_RGB[1], b=_RGB[2], a=1.0)
        spheres.points = [Point() for _ in self._names]
        spheres.colors = [ColorRGBA(r=_RGB[0], g=_RGB[1], b=_RGB[2]) for _ in self._names]
        spheres.text = ",".join(self._names)
        markers = [spheres]
        if lines is not None:
            skeleton = self._marker(SKELETON_NAMESPACE, Marker.LINE_LIST)
            skeleton.scale.x = self.line_width
            skeleton.color = ColorRGBA(r=0.92, g=0.94, b=0.96, a=1.0)
            skeleton.points = [Point() for _ in range(len(lines))]
            markers.append(skeleton)
        return MarkerArray(markers=markers)

    def _marker(self, namespace: str, kind: int) -> Marker:
        marker = Marker()
        marker.header.frame_id = self.frame_id
        marker.ns = namespace
        marker.id = 0
        marker.type = kind
        marker.action = Marker.ADD
        marker.pose.orientation.w = 1.0
        marker.lifetime = _LIFETIME
        return marker

    @staticmethod
    def _mark(message: MarkerArray, doubles: list, ints: list, floats: list) -> None:
        """Values in the order array() gives them: sphere points then line points (x y z);
        sphere stamp then line stamp (sec nanosec); sphere alphas."""
        points = [p for marker in message.markers for p in marker.points]
        for k, point in enumerate(points):
            point.x, point.y, point.z = doubles[3 * k:3 * k + 3]
        for k, marker in enumerate(message.markers):
            marker.header.stamp.sec, marker.header.stamp.nanosec = ints[2 * k:2 * k + 2]
        for color, alpha in zip(message.markers[0].colors, floats):
            color.a = alpha


class ChannelStates:
    """JointStates for the samples of envelope chunks kept at about target_rate per second
    (0: every sample), as bytes from a template of the channel layout (or messages)."""

    def __init__(self, target_rate: float):
        self.target_rate = target_rate
        self._layout: tuple | None = None
        self._template: CdrTemplate | None = None

    def messages(self, msg: SignalChunk, data: np.ndarray) -> list[bytes | JointState]:
        """data is the chunk as samples x channels."""
        step = decimation_step(msg.sample_rate, self.target_rate)
        period_ns = 1e9 / msg.sample_rate if msg.sample_rate > 0 else 0.0
        layout = (msg.header.frame_id, tuple(msg.channel_names))
        if layout != self._layout:
            self._layout = layout
            self._template = CdrTemplate.build(self._message(), self._mark, len(layout[1]), 2)
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        states = []
        for row in picked_rows(msg.first_sample_index, len(data), step).tolist():
            ns = stamp_ns + int(round(row * period_ns))
            stamp = divmod(ns, 1_000_000_000)
            if self._template is not None:
                states.append(self._template.fill(data[row], np.array(stamp)))
            else:
                state = self._message()
                self._mark(state, data[row].tolist(), list(stamp), [])
                states.append(state)
        return states

    def _message(self) -> JointState:
        state = JointState()
        state.header.frame_id = self._layout[0]
        state.name = list(self._layout[1])
        return state

    @staticmethod
    def _mark(state: JointState, doubles: list, ints: list, floats: list) -> None:
        state.position = array.array("d", doubles)
        state.header.stamp.sec, state.header.stamp.nanosec = ints
