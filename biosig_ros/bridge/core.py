"""The bridge without ROS: samples in (from any thread), legacy replies and records out.

Each topic is one source of a biosiglive key; its samples are turned into biosiglive's layout
(samples on the last axis; markers scaled from metres, occluded ones zeroed like Vicon) and
pushed to the server's buffers and, while recording, to the recorder.
"""
from __future__ import annotations

import numpy as np

from biosig_ros.bridge.bio_recorder import BioRecorder, RecorderSettings
from biosig_ros.bridge.frame_pairing import StampPairing
from biosig_ros.bridge.legacy_protocol import DATA_KEYS, LegacyRequest
from biosig_ros.bridge.legacy_server import reply_from_buffers
from biosig_ros.bridge.ring_buffers import SourceBuffers
from biosig_ros.bridge.settings import BridgeSettings
from biosig_ros.signals import MarkerFrame, SignalChunk
from biosig_ros.stream_stats import StreamStats

_PLACEHOLDER_CAPACITY = 1  # proc buffers sized "one second" wait for the first sample_rate


class BridgeCore:
    def __init__(self, settings: BridgeSettings, recorder_settings: RecorderSettings,
                 **recorder_guard):
        """recorder_guard: free= / on_error= of the recorder (rotating_recorder)."""
        self.settings = settings
        self.sources = {key: settings.topics(key) for key in DATA_KEYS}
        capacities = {
            "raw_device_data": settings.raw_buffer_size,
            "proc_device_data": settings.device_buffer_size or _PLACEHOLDER_CAPACITY,
            "kinematics_data": settings.marker_set_buffer_size,
            "marker_set_data": settings.marker_buffer_size,
        }
        self.buffers = SourceBuffers(
            {key: [capacities[key]] * len(topics) for key, topics in self.sources.items()})
        self.recorder = BioRecorder({k: len(t) for k, t in self.sources.items()},
                                    recorder_settings, **recorder_guard)
        self.stats = {(key, i): StreamStats() for key, topics in self.sources.items()
                      for i in range(len(topics))}
        self._described: dict[tuple[str, int], tuple] = {}
        self.pairings = [StampPairing(numbered=bool(settings.index_topic(i)))
                         for i in range(len(self.sources["kinematics_data"]))]
        # on_gap(count, stream): samples / frames missing before a message (node diagnostics).
        self.on_gap = None

    def _count(self, key: str, index: int, first: int, count: int) -> None:
        missing = self.stats[(key, index)].update(first, count)
        if missing and self.on_gap is not None:
            # A kinematics gap is an IK frame number missing: skipped by IK or lost on the way.
            self.on_gap(missing, self.sources[key][index] + (
                " IK frames" if key == "kinematics_data" else ""))

    def answer(self, request: LegacyRequest) -> dict:
        """The legacy server's answer function."""
        return reply_from_buffers(self.buffers, request)

    def _describe(self, key: str, index: int, names: list[str], rate, unit: str) -> None:
        description = (tuple(names), rate, unit)
        if self._described.get((key, index)) != description:
            self._described[(key, index)] = description
            self.recorder.describe(key, index, topic=self.sources[key][index], names=list(names),
                                   rate=rate, unit=unit)

    def on_signal(self, key: str, index: int, chunk: SignalChunk) -> None:
        """A SignalChunk of raw_device_data or proc_device_data source `index`."""
        first = (key, index) not in self._described
        if first and key == "proc_device_data" and not self.settings.device_buffer_size:
            self.buffers.set_capacity(key, index, max(1, int(round(chunk.sample_rate))))
        data = np.ascontiguousarray(chunk.data.T)          # channels x samples
        n = data.shape[1]
        self.buffers.push(key, index, data)
        self._count(key, index, chunk.first_sample_index, n)
        self._describe(key, index, chunk.channel_names, float(chunk.sample_rate), chunk.unit)
        if self.recorder.recording:
            steps = np.arange(n)
            self.recorder.add(key, index, data, chunk.stamp + steps / chunk.sample_rate,
                              chunk.first_sample_index + steps)

    def legacy_markers(self, frame: MarkerFrame) -> np.ndarray:
        """3 x markers x 1 in the served unit; occluded markers 0 (or NaN)."""
        positions = frame.positions * self.settings.marker_scale
        if self.settings.occluded_as_zero:
            positions = np.where(np.isnan(positions), 0.0, positions)
        return positions.T[:, :, np.newaxis].copy()

    def on_markers(self, index: int, frame: MarkerFrame) -> None:
        data = self.legacy_markers(frame)
        self.buffers.push("marker_set_data", index, data)
        self._count("marker_set_data", index, frame.frame_number, 1)
        unit = "mm" if self.settings.marker_scale == 1000.0 else (
            "m" if self.settings.marker_scale == 1.0 else f"m*{self.settings.marker_scale:g}")
        self._describe("marker_set_data", index, frame.marker_names, float(frame.frame_rate), unit)
        if self.recorder.recording:
            self.recorder.add("marker_set_data", index, data, np.array([frame.stamp]),
                              np.array([frame.frame_number]))

    def on_joints(self, index: int, names: list[str], positions, stamp_ns: int) -> None:
        """A joint state (q in radians, metres for translations) of kinematics source `index`;
        served at once, counted and recorded once its IK frame number is known."""
        data = np.asarray(positions, dtype=np.float64).reshape(-1, 1)
        self.buffers.push("kinematics_data", index, data)
        self._describe("kinematics_data", index, names, None, "rad")
        self._joints_numbered(index, self.pairings[index].on_item(stamp_ns, (data, stamp_ns)))

    def on_frame_number(self, index: int, stamp_ns: int, frame_number: int) -> None:
        """The IK frame number of the joint state of kinematics source `index` stamped stamp_ns
        (from MarkerResiduals)."""
        self._joints_numbered(index, self.pairings[index].on_number(stamp_ns, frame_number))

    def _joints_numbered(self, index: int, released) -> None:
        for (data, stamp_ns), number in released:
            self._count("kinematics_data", index, number, 1)
            if self.recorder.recording:
                self.recorder.add("kinematics_data", index, data, np.array([stamp_ns * 1e-9]),
                                  np.array([number]))
