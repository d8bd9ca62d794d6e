"""MarkerSet read straight from its CDR bytes (a raw take), for a node that takes every frame
but needs only a few fields of it, as numpy arrays.

rclpy turns a MarkerSet of 51 markers into 51 geometry_msgs/Point objects and 51 strings at
every frame; the live view then turns them back into arrays. Here the positions are one
`numpy.frombuffer` and the names are decoded again only when their bytes change. Plain
little-endian CDR (encapsulation 0x0001, what rmw_fastrtps and rmw_cyclonedds send for ROS
types) is read; anything else raises ValueError, and the caller falls back to rclpy's
deserializer (`MarkerFrameView.of_message`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_CDR_LE = b"\x00\x01"
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")


class CdrReader:
    """Fields read in order from little-endian CDR (alignment counted after the 4-byte
    encapsulation header); ValueError on bytes that end early or hold impossible lengths."""

    def __init__(self, data: bytes):
        if len(data) < 4 or data[:2] != _CDR_LE:
            raise ValueError("not little-endian plain CDR")
        self.data = data
        self.position = 4

    def _read(self, layout: struct.Struct):
        self.position += -(self.position - 4) % layout.size
        try:
            (value,) = layout.unpack_from(self.data, self.position)
        except struct.error:
            raise ValueError("message ends early") from None
        self.position += layout.size
        return value

    def uint32(self) -> int:
        return self._read(_U32)

    def int32(self) -> int:
        return self._read(_I32)

    def uint64(self) -> int:
        return self._read(_U64)

    def float64(self) -> float:
        return self._read(_F64)

    def count(self, item_bytes: int) -> int:
        """A sequence length, checked against the bytes left (item_bytes: its smallest item)."""
        n = self.uint32()
        if n * item_bytes > len(self.data) - self.position:
            raise ValueError(f"sequence of {n} items longer than the message")
        return n

    def string(self) -> str:
        n = self.count(1)
        start, self.position = self.position, self.position + n
        return self.data[start:start + n - 1].decode("utf-8", errors="replace") if n else ""

    def strings_with_spans(self) -> tuple[list[str], list[tuple[int, int]]]:
        """A string sequence and the (offset, length) of its defined bytes: the count, each
        length and text; not the alignment padding between them, which serializers leave
        unset (rclpy's differs from one message to the next)."""
        count = self.count(4)
        spans = [(self.position - 4, 4)]
        texts = []
        for _ in range(count):
            self.position += -(self.position - 4) % 4
            start = self.position
            texts.append(self.string())
            spans.append((start, self.position - start))
        return texts, spans

    def float64_array(self, n: int) -> np.ndarray:
        if n:
            self.position += -(self.position - 4) % 8
        end = self.position + 8 * n
        if end > len(self.data):
            raise ValueError("message ends early")
        values = np.frombuffer(self.data, "<f8", n, self.position)
        self.position = end
        return values

    def bools(self) -> np.ndarray:
        n = self.count(1)
        values = np.frombuffer(self.data, np.uint8, n, self.position) != 0
        self.position += n
        return values


@dataclass
class MarkerFrameView:
    """The fields of a MarkerSet a viewer uses (stamp as sec, nanosec)."""

    sec: int
    nanosec: int
    frame_id: str
    subject: str
    frame_number: int
    frame_rate: float
    names: tuple[str, ...]
    positions: np.ndarray  # markers x 3, metres (read-only view of the message bytes)
    occluded: np.ndarray   # bool per marker (all False when the message has none)

    @classmethod
    def of_message(cls, msg) -> "MarkerFrameView":
        """The same view of a deserialized MarkerSet (bytes in another encoding)."""
        positions = np.array([(p.x, p.y, p.z) for p in msg.positions], dtype=float)
        occluded = np.array(msg.occluded, dtype=bool) if len(msg.occluded) else np.zeros(
            len(positions), dtype=bool)
        if not len(msg.marker_names) == len(positions) == len(occluded):
            raise ValueError(f"{len(msg.marker_names)} names, {len(positions)} positions, "
                             f"{len(occluded)} occluded flags")
        return cls(msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id,
                   msg.subject, msg.frame_number, msg.frame_rate, tuple(msg.marker_names),
                   positions.reshape(-1, 3), occluded)


class MarkerSetReader:
    """biosig_ros/MarkerSet bytes -> MarkerFrameView; the names' tuple is reused while their
    bytes stay the same (a marker set's labels rarely change)."""

    def __init__(self):
        self._names_mask = np.zeros(0, dtype=bool)  # which bytes of the names are defined
        self._names_defined = np.zeros(0, dtype=np.uint8)  # and their values
        self._names: tuple[str, ...] = ()

    def read(self, data: bytes) -> MarkerFrameView:
        reader = CdrReader(data)
        sec, nanosec = reader.int32(), reader.uint32()
        frame_id, subject = reader.string(), reader.string()
        frame_number, frame_rate = reader.uint64(), reader.float64()
        start, known = reader.position, len(self._names_mask)
        # The names' encoding delimits itself: the same defined bytes (lengths and texts)
        # decode to the same names, whatever the padding between them holds.
        if known and len(data) >= start + known and np.array_equal(
                np.frombuffer(data, np.uint8, known, start)[self._names_mask],
                self._names_defined):
            reader.position = start + known
        else:
            names, spans = reader.strings_with_spans()
            mask = np.zeros(reader.position - start, dtype=bool)
            for offset, length in spans:
                mask[offset - start:offset - start + length] = True
            self._names_mask, self._names = mask, tuple(names)
            self._names_defined = np.frombuffer(data, np.uint8, len(mask), start)[mask].copy()
        positions = reader.float64_array(3 * reader.count(24)).reshape(-1, 3)
        occluded = reader.bools()
        if len(occluded) == 0:
            occluded = np.zeros(len(positions), dtype=bool)
        if not len(self._names) == len(positions) == len(occluded):
            raise ValueError(f"{len(self._names)} names, {len(positions)} positions, "
                             f"{len(occluded)} occluded flags")
        return MarkerFrameView(sec, nanosec, frame_id, subject, frame_number, frame_rate,
                               self._names, positions, occluded)
