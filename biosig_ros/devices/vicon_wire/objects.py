"""Encoders of the DataStream objects the simulator sends, one function per object type.

Each returns the object's body in the field order of Vicon's Read/Write (ViconCGStream/*.h);
wire_format.block() adds the type id and length. Times are in ticks of Vicon's 135 MHz clock.
"""
from __future__ import annotations

import struct
from typing import Iterable, Sequence

import numpy as np

from biosig_ros.devices.vicon_wire import wire_format as wf

TICKS_PER_SECOND = 135_000_000
EZ_UP = 0                          # ApplicationInfo axis orientation
TIMECODE_PAL = 0
NO_PARENT = 0                      # SubjectInfo segment parent id of a root segment

# One labeled reconstruction: subject id, marker id, radius, position xyz, covariance 3x3,
# trajectory id (doubles for radius, position, covariance).
RECON_DTYPE = np.dtype([("subject", "<u4"), ("marker", "<u4"), ("radius", "<f8"),
                        ("position", "<f8", (3,)), ("covariance", "<f8", (9,)),
                        ("trajectory", "<u4")])
SEGMENT_DTYPE = np.dtype([("segment", "<u4"), ("translation", "<f8", (3,)),
                          ("rotation", "<f8", (9,))])
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def frame_period_ticks(rate_hz: float) -> int:
    return int(round(TICKS_PER_SECOND / rate_hz))


def object_enums(type_ids: Iterable[int]) -> bytes:
    return wf.u32_set(type_ids)


def contents(unchanged: Iterable[int]) -> bytes:
    """Contents: an (empty) enum table, then the types left out because they did not change."""
    return wf.u32(0) + wf.u32_set(unchanged)


def stream_info(frame_period: int) -> bytes:
    return struct.pack("<q", frame_period)


def application_info(axis_orientation: int = EZ_UP) -> bytes:
    return struct.pack("<b", axis_orientation)


def subject_info(subject_id: int, name: str, segments: Sequence[tuple[int, int, str]],
                 markers: Sequence[tuple[int, str]],
                 attachments: Sequence[tuple[int, int]]) -> bytes:
    """segments: (parent id, segment id, name), bounds left zero; markers: (marker id, name);
    attachments: (marker id, segment id)."""
    segment_bytes = [struct.pack("<II6f", parent, segment, *([0.0] * 6)) + wf.string(label)
                     for parent, segment, label in segments]
    marker_bytes = [wf.u32(marker) + wf.string(label) for marker, label in markers]
    attachment_bytes = [struct.pack("<II", marker, segment) for marker, segment in attachments]
    return (wf.u32(subject_id) + wf.string(name) + wf.sequence(segment_bytes)
            + wf.sequence(marker_bytes) + wf.sequence(attachment_bytes))


def frame_info(frame_id: int) -> bytes:
    return wf.u32(frame_id & 0xFFFFFFFF)


def frame_rate_info(rates: dict[str, float]) -> bytes:
    return wf.u32(len(rates)) + b"".join(wf.string(name) + struct.pack("<d", value)
                                         for name, value in sorted(rates.items()))


def timecode(hours: int, minutes: int, seconds: int, frames: int, subframe: int,
             subframes_per_frame: int, standard: int = TIMECODE_PAL, user_bits: int = 0,
             field_flag: int = 0) -> bytes:
    return struct.pack("<BBBBHHIIB", hours, minutes, seconds, frames, subframe,
                       subframes_per_frame, standard, user_bits, field_flag)


def latency_info(samples: Sequence[tuple[str, float]]) -> bytes:
    """Latency samples (name, seconds); the SDK's GetLatencyTotal adds them up."""
    return wf.sequence(wf.string(name) + struct.pack("<d", seconds) for name, seconds in samples)


def labeled_recons(subject_ids: np.ndarray, marker_ids: np.ndarray, positions: np.ndarray,
                   radius: float = 7.0) -> bytes:
    """One recon per row: positions (n x 3, millimetres) of the markers seen in this frame."""
    recons = np.zeros(len(positions), dtype=RECON_DTYPE)
    recons["subject"] = subject_ids
    recons["marker"] = marker_ids
    recons["radius"] = radius
    recons["position"] = positions
    recons["trajectory"] = marker_ids
    return wf.u32(len(recons)) + recons.tobytes()


def unlabeled_recons(positions: np.ndarray | None = None) -> bytes:
    positions = np.zeros((0, 3)) if positions is None else positions
    body = [struct.pack("<d3d9dI", 7.0, *p, *([0.0] * 9), 0) for p in positions]
    return wf.sequence(body)


def segments(subject_id: int, poses: Sequence[tuple[int, Sequence[float]]]) -> bytes:
    """Global or local segments of one subject: (segment id, translation in mm), identity
    rotation (the simulator has no kinematic model)."""
    rows = np.zeros(len(poses), dtype=SEGMENT_DTYPE)
    for row, (segment, translation) in zip(rows, poses):
        row["segment"] = segment
        row["translation"] = translation
        row["rotation"] = IDENTITY
    return wf.u32(subject_id) + wf.u32(len(rows)) + rows.tobytes()


def device_info(device_id: int, frame_period: int, name: str) -> bytes:
    return struct.pack("<IQ", device_id, frame_period) + wf.string(name)


def channel_info(device_id: int, channel_id: int, name: str, components: Sequence[str]) -> bytes:
    return struct.pack("<II", device_id, channel_id) + wf.string(name) + \
        wf.sequence(wf.string(c) for c in components)


def channel_info_extra(device_id: int, channel_id: int, unit: str, kind: str) -> bytes:
    """Unit as the SDK spells SI units ("volt"), and a type label."""
    return struct.pack("<II", device_id, channel_id) + wf.string(unit) + wf.string(kind)


def voltage_frame(frame_id: int, device_id: int, channel_id: int, samples: np.ndarray) -> bytes:
    """The samples of one channel (one component) over one device frame, as float32."""
    values = np.asarray(samples, dtype="<f4")
    return struct.pack("<IIII", frame_id & 0xFFFFFFFF, device_id, channel_id, len(values)) + \
        values.tobytes()


def ping(ping_id: int) -> bytes:
    return struct.pack("<Q", ping_id)
