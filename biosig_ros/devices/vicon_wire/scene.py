"""What the wire simulator streams (subjects, devices, rate) and the objects of each frame.

Frame numbers are the ones the SDK reports (GetFrameNumber); on the wire a frame's id is that
number minus one (Vicon's client adds one), and each device frame carries the same id.

WireScene holds the data in the SDK's units (millimetres, volts); FrameBuilder turns it into
DataStream object blocks with the ids the SDK resolves names through: subjects 1..n, each
with one root segment (id 1) carrying all its markers (ids 1..m), devices 1..k with one
channel per analog signal. A marker that is NaN in a frame gets no labeled reconstruction:
the SDK then reports it occluded.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from biosig_ros.devices.vicon_wire import objects as obj
from biosig_ros.devices.vicon_wire import wire_format as wf
from biosig_ros.errors import ConfigError

ROOT_SEGMENT_ID = 1
TIMECODE_RATE = 25                 # PAL timecode frames per second
CACHED_FRAMES = 16


@dataclass
class WireSubject:
    """A labelled subject: positions_mm is frames x markers x 3, NaN where occluded."""

    name: str
    marker_names: list[str]
    positions_mm: np.ndarray

    def __post_init__(self):
        positions = np.asarray(self.positions_mm, dtype=float)
        if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] == 0:
            raise ConfigError(f"subject {self.name}: positions must be frames x markers x 3, "
                              f"got {positions.shape}")
        if len(self.marker_names) != positions.shape[1]:
            raise ConfigError(f"subject {self.name}: {positions.shape[1]} markers but "
                              f"{len(self.marker_names)} names")
        positions = positions.copy()
        # Vicon exports and biosiglive store an occluded marker as (0, 0, 0).
        positions[np.all(positions == 0.0, axis=-1)] = np.nan
        self.positions_mm = positions


@dataclass
class WireDevice:
    """An analog device (e.g. EMG through Nexus): samples x channels, samples_per_frame
    samples of each channel per system frame; each channel is one output with one component."""

    name: str
    channel_names: list[str]
    samples: np.ndarray
    samples_per_frame: int
    unit: str = "volt"
    component: str = "EMG"

    def __post_init__(self):
        self.samples = np.asarray(self.samples, dtype=np.float32)
        if self.samples.ndim != 2 or self.samples.shape[1] != len(self.channel_names):
            raise ConfigError(f"device {self.name}: samples must be samples x "
                              f"{len(self.channel_names)} channels, got {self.samples.shape}")
        if self.samples_per_frame < 1 or self.samples.shape[0] == 0:
            raise ConfigError(f"device {self.name}: needs samples and at least one per frame")

    def frame_samples(self, row: int) -> np.ndarray:
        """samples_per_frame x channels for recording frame `row` (the signal loops)."""
        k = self.samples_per_frame
        rows = np.arange(row * k, row * k + k) % self.samples.shape[0]
        return self.samples[rows]


@dataclass
class WireScene:
    frame_rate: float
    subjects: list[WireSubject]
    devices: list[WireDevice] = field(default_factory=list)
    prefix_marker_names: bool = False   # send "Subject:MARKER" instead of "MARKER"

    def __post_init__(self):
        if self.frame_rate <= 0:
            raise ConfigError(f"frame rate must be > 0 Hz, got {self.frame_rate}")
        period = obj.TICKS_PER_SECOND / self.frame_rate
        if abs(period - round(period)) > 1e-6:
            raise ConfigError(f"frame rate {self.frame_rate} Hz is not a whole number of ticks "
                              f"of Vicon's 135 MHz clock")
        names = [s.name for s in self.subjects]
        if len(set(names)) != len(names) or not names:
            raise ConfigError(f"subject names must be unique and at least one: {names}")
        for device in self.devices:
            if round(period) % device.samples_per_frame:
                raise ConfigError(f"device {device.name}: {device.samples_per_frame} samples "
                                  f"per frame do not divide the frame period")

    @property
    def frame_count(self) -> int:
        return max(s.positions_mm.shape[0] for s in self.subjects)

    def wire_marker_name(self, subject: WireSubject, marker: str) -> str:
        return f"{subject.name}:{marker}" if self.prefix_marker_names else marker


@dataclass
class Item:
    """One object block ready to send; filter_id is what a client Filter selects it by."""

    type_id: int
    data: bytes
    filter_id: int | None = None


class FrameBuilder:
    """Static and per-frame object blocks of a scene (thread-safe; recent frames cached)."""

    def __init__(self, scene: WireScene, first_frame: int = 1):
        if first_frame < 1:
            raise ConfigError(f"frame numbers start at 1 or more, got {first_frame}")
        self.scene = scene
        self.first_frame = first_frame
        self.frame_period = obj.frame_period_ticks(scene.frame_rate)
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, list[Item]] = OrderedDict()
        self.static_items = self._build_static()

    def recording_row(self, frame_number: int) -> int:
        return (frame_number - self.first_frame) % self.scene.frame_count

    def _build_static(self) -> list[Item]:
        scene = self.scene
        items = [Item(wf.STREAM_INFO, wf.block(wf.STREAM_INFO,
                                               obj.stream_info(self.frame_period))),
                 Item(wf.APPLICATION_INFO, wf.block(wf.APPLICATION_INFO,
                                                    obj.application_info()))]
        for subject_id, subject in enumerate(scene.subjects, start=1):
            markers = [(i, scene.wire_marker_name(subject, name))
                       for i, name in enumerate(subject.marker_names, start=1)]
            body = obj.subject_info(subject_id, subject.name,
                                    [(obj.NO_PARENT, ROOT_SEGMENT_ID, subject.name)], markers,
                                    [(i, ROOT_SEGMENT_ID) for i, _ in markers])
            items.append(Item(wf.SUBJECT_INFO, wf.block(wf.SUBJECT_INFO, body), subject_id))
        for device_id, device in enumerate(scene.devices, start=1):
            items.append(Item(wf.DEVICE_INFO, wf.block(wf.DEVICE_INFO, obj.device_info(
                device_id, self.frame_period, device.name)), device_id))
            for channel_id, name in enumerate(device.channel_names, start=1):
                items.append(Item(wf.CHANNEL_INFO, wf.block(wf.CHANNEL_INFO, obj.channel_info(
                    device_id, channel_id, name, [device.component])), device_id))
                items.append(Item(wf.CHANNEL_INFO_EXTRA, wf.block(
                    wf.CHANNEL_INFO_EXTRA, obj.channel_info_extra(
                        device_id, channel_id, device.unit, device.component)), device_id))
        return items

    def frame_items(self, frame_number: int) -> list[Item]:
        """The dynamic objects of one frame (LatencyInfo excepted: it is stamped at sending)."""
        with self._lock:
            items = self._cache.get(frame_number)
            if items is None:
                items = self._build_frame(frame_number)
                self._cache[frame_number] = items
                while len(self._cache) > CACHED_FRAMES:
                    self._cache.popitem(last=False)
            return items

    def _build_frame(self, frame_number: int) -> list[Item]:
        scene = self.scene
        row = self.recording_row(frame_number)
        wire_id = frame_number - 1            # the SDK reports FrameInfo's id + 1
        items = [Item(wf.FRAME_INFO, wf.block(wf.FRAME_INFO, obj.frame_info(wire_id))),
                 Item(wf.FRAME_RATE_INFO, wf.block(wf.FRAME_RATE_INFO, obj.frame_rate_info(
                     {"System": float(scene.frame_rate)}))),
                 Item(wf.TIMECODE, wf.block(wf.TIMECODE, self._timecode(frame_number)))]
        subject_ids, marker_ids, positions, segment_items = [], [], [], []
        for subject_id, subject in enumerate(scene.subjects, start=1):
            frame = subject.positions_mm[row % subject.positions_mm.shape[0]]
            seen = np.flatnonzero(np.all(np.isfinite(frame), axis=1))
            subject_ids.append(np.full(len(seen), subject_id))
            marker_ids.append(seen + 1)
            positions.append(frame[seen])
            # The simulator has no kinematic model: the root segment sits at the centroid of
            # the markers seen (the origin when none is).
            centre = frame[seen].mean(axis=0) if len(seen) else np.zeros(3)
            pose = obj.segments(subject_id, [(ROOT_SEGMENT_ID, centre)])
            segment_items.append(Item(wf.GLOBAL_SEGMENTS, wf.block(wf.GLOBAL_SEGMENTS, pose),
                                      subject_id))
            segment_items.append(Item(wf.LOCAL_SEGMENTS, wf.block(wf.LOCAL_SEGMENTS, pose),
                                      subject_id))
        items.append(Item(wf.LABELED_RECONS, wf.block(wf.LABELED_RECONS, obj.labeled_recons(
            np.concatenate(subject_ids), np.concatenate(marker_ids),
            np.concatenate(positions)))))
        items.append(Item(wf.UNLABELED_RECONS, wf.block(wf.UNLABELED_RECONS,
                                                        obj.unlabeled_recons())))
        items.extend(segment_items)
        for device_id, device in enumerate(scene.devices, start=1):
            block = device.frame_samples(row)
            for channel_id in range(1, len(device.channel_names) + 1):
                body = obj.voltage_frame(wire_id, device_id, channel_id,
                                         block[:, channel_id - 1])
                items.append(Item(wf.VOLTAGE_FRAME, wf.block(wf.VOLTAGE_FRAME, body),
                                  device_id))
        return items

    def _timecode(self, frame_number: int) -> bytes:
        elapsed_frames = max(0, frame_number - self.first_frame)
        per_tc = self.scene.frame_rate / TIMECODE_RATE
        subframes = int(per_tc) if per_tc >= 1 and per_tc == int(per_tc) else 1
        tc_frames = int(math.floor(elapsed_frames / per_tc)) if per_tc >= 1 else elapsed_frames
        seconds, frames = divmod(tc_frames, TIMECODE_RATE)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return obj.timecode(hours % 24, minutes, seconds, frames, elapsed_frames % subframes,
                            subframes)


def offset_copy(subject: WireSubject, name: str, offset_mm: Sequence[float]) -> WireSubject:
    """A second subject: the same markers shifted by offset_mm (a second person or object)."""
    return WireSubject(name, list(subject.marker_names),
                       subject.positions_mm + np.asarray(offset_mm, dtype=float))
