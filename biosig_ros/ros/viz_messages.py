"""Standard messages that ROS viewers draw without knowing the package's own messages.

- `MarkerArrays`: visualization_msgs/MarkerArray for RViz and Foxglove with two markers:
  the markers of a MarkerSet as one SPHERE_LIST (namespace "markers", id 0; point i is marker
  i of the MarkerSet and `text` lists their names, comma-separated; an occluded marker is
  hidden: fully transparent, at its last seen position, since RViz refuses a marker holding a
  NaN), and the skeleton as one LINE_LIST (namespace "skeleton", id 0), a pair of points per
  parent-child segment pair. Each marker carries the capture stamp of the message it was
  built from. One SPHERE per marker would cost 16 times the conversion work in rclpy (1.9 ms
  per array measured here, against 0.4 ms).
- `channel_states`: sensor_msgs/JointState per EMG sample kept by decimation (names = channel
  names, position = values, stamp = that sample's capture time): the per-channel form that
  rqt_plot, PlotJuggler and CEINMS-RT's ROS plugin read.
"""
from __future__ import annotations

import array
import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from biosig_ros.msg import MarkerSet, SignalChunk
from biosig_ros.ros.conversions import advance_stamp
from biosig_ros.viewers.streams import decimation_step, picked_rows

MARKER_NAMESPACE = "markers"
SKELETON_NAMESPACE = "skeleton"
_LIFETIME = Duration(sec=1)  # a viewer clears what a stopped stream left behind
_VISIBLE = (0.31, 0.76, 0.97, 1.0)
_HIDDEN = (0.31, 0.76, 0.97, 0.0)


def _points(count: int) -> list[Point]:
    return [Point() for _ in range(count)]


class MarkerArrays:
    """Builds the MarkerArray; its Marker, Point and colour objects are reused."""

    def __init__(self, frame_id: str, diameter: float, line_width: float = 0.008):
        self._spheres = self._marker(MARKER_NAMESPACE, Marker.SPHERE_LIST, frame_id)
        self._spheres.scale.x = self._spheres.scale.y = self._spheres.scale.z = diameter
        self._spheres.color = ColorRGBA(r=_VISIBLE[0], g=_VISIBLE[1], b=_VISIBLE[2], a=1.0)
        self._lines = self._marker(SKELETON_NAMESPACE, Marker.LINE_LIST, frame_id)
        self._lines.scale.x = line_width
        self._lines.color = ColorRGBA(r=0.92, g=0.94, b=0.96, a=1.0)
        self._names: list[str] = []
        self._last_seen: list[tuple[float, float, float] | None] = []
        self.has_skeleton = False

    @staticmethod
    def _marker(namespace: str, kind: int, frame_id: str) -> Marker:
        marker = Marker()
        marker.header.frame_id = frame_id
        marker.ns = namespace
        marker.id = 0
        marker.type = kind
        marker.action = Marker.ADD
        marker.pose.orientation.w = 1.0
        marker.lifetime = _LIFETIME
        return marker

    def update_markers(self, msg: MarkerSet) -> None:
        """The spheres from a MarkerSet (metres); occluded markers transparent."""
        names = list(msg.marker_names)
        spheres = self._spheres
        if names != self._names:
            self._names = names
            self._last_seen = [None] * len(names)
            spheres.points = _points(len(names))
            spheres.colors = [ColorRGBA() for _ in names]
            spheres.text = ",".join(names)
        occluded = list(msg.occluded) or [False] * len(names)
        seen = [p for p in self._last_seen if p is not None]
        for i, (source, point, color, hidden) in enumerate(
                zip(msg.positions, spheres.points, spheres.colors, occluded)):
            xyz = (source.x, source.y, source.z)
            visible = not hidden and all(math.isfinite(v) for v in xyz)
            if visible:
                self._last_seen[i] = xyz
            else:  # where it was last seen, or the first marker seen: somewhere finite
                xyz = self._last_seen[i] or (seen[0] if seen else (0.0, 0.0, 0.0))
            point.x, point.y, point.z = xyz
            color.r, color.g, color.b, color.a = _VISIBLE if visible else _HIDDEN
        spheres.header.stamp = msg.header.stamp

    def update_skeleton(self, stamp: Time, line_points: np.ndarray) -> None:
        """The lines: line_points is pairs x 2 x 3 (parent origin, child origin)."""
        flat = line_points.reshape(-1, 3).tolist()
        if len(self._lines.points) != len(flat):
            self._lines.points = _points(len(flat))
        for point, (x, y, z) in zip(self._lines.points, flat):
            point.x, point.y, point.z = x, y, z
        self._lines.header.stamp = stamp
        self.has_skeleton = True

    def array(self) -> MarkerArray:
        """The spheres and, once a pose is known, the skeleton."""
        markers = [self._spheres] + ([self._lines] if self.has_skeleton else [])
        return MarkerArray(markers=markers)


def channel_states(msg: SignalChunk, data: np.ndarray, target_rate: float) -> list[JointState]:
    """JointStates for the samples of a chunk kept at about target_rate per second (0: every
    sample); data is the chunk as samples x channels."""
    step = decimation_step(msg.sample_rate, target_rate)
    period_ns = 1e9 / msg.sample_rate if msg.sample_rate > 0 else 0.0
    states = []
    for row in picked_rows(msg.first_sample_index, len(data), step).tolist():
        state = JointState()
        state.header.frame_id = msg.header.frame_id
        stamp = Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec)
        state.header.stamp = advance_stamp(stamp, int(round(row * period_ns)))
        state.name = list(msg.channel_names)
        state.position = array.array("d", data[row].tobytes())
        states.append(state)
    return states
