"""A message of fixed layout serialized once, its numbers rewritten in place for each publish.

rclpy converts a message to its C form field by field: for /tf with every segment of a model
(36 transforms, 7 doubles and a stamp each) that costs more than solving the frame. The
layout of such a message never changes between frames (same frame names, same count), so the
CDR bytes are produced once by rclpy's own serializer from a copy holding a distinct sentinel
in every number field; the offsets of the sentinels are where each frame's numbers go.
Publishers take the bytes as they are (`Publisher.publish(bytes)`, rclpy since Foxy).
"""
from __future__ import annotations

import numpy as np
from rclpy.serialization import serialize_message

_DOUBLE_SENTINEL = 7.0e300  # + i * 2**996: exact, distinct and absent from real data
_FLOAT_SENTINEL = 2.0 ** 126  # float32: + i * 2**103, exact and distinct up to 2**23 fields
_INT_SENTINEL = 0x5A5A0000


class CdrTemplate:
    """The bytes of a message with `doubles` float64 fields, `ints` 32-bit integer fields and
    `floats` float32 fields marked by `mark(message, doubles, ints, floats)` (which writes the
    given sentinels into them, in the order the caller will later give values). None from
    `build` when the sentinels cannot be found once each (then publish messages the ordinary
    way)."""

    def __init__(self, data: bytes, double_offsets: np.ndarray, int_offsets: np.ndarray,
                 float_offsets: np.ndarray | None = None):
        self._bytes = np.frombuffer(data, dtype=np.uint8).copy()  # writable
        self._double_index = double_offsets[:, None] + np.arange(8)
        self._int_index = int_offsets[:, None] + np.arange(4)
        float_offsets = np.zeros(0, np.int64) if float_offsets is None else float_offsets
        self._float_index = float_offsets[:, None] + np.arange(4)

    @classmethod
    def build(cls, message, mark, double_count: int, int_count: int,
              float_count: int = 0) -> "CdrTemplate | None":
        doubles = _DOUBLE_SENTINEL + np.arange(double_count) * 2.0 ** 996
        ints = _INT_SENTINEL + np.arange(int_count)
        floats = (_FLOAT_SENTINEL + np.arange(float_count) * 2.0 ** 103).astype(np.float32)
        mark(message, doubles.tolist(), ints.tolist(), floats.tolist())
        data = serialize_message(message)
        if data[:2] != b"\x00\x01":  # CDR little-endian: the sentinels' byte order below
            return None
        double_offsets = _find(data, doubles.astype("<f8").tobytes(), 8)
        int_offsets = _find(data, ints.astype("<u4").tobytes(), 4)
        float_offsets = _find(data, floats.astype("<f4").tobytes(), 4)
        if double_offsets is None or int_offsets is None or float_offsets is None:
            return None
        return cls(data, double_offsets, int_offsets, float_offsets)

    def fill(self, doubles: np.ndarray, ints: np.ndarray, floats=()) -> bytes:
        """The message's bytes with these values (in the marking order)."""
        self._bytes[self._double_index] = np.ascontiguousarray(
            doubles, dtype="<f8").reshape(-1, 1).view(np.uint8)
        self._bytes[self._int_index] = np.ascontiguousarray(
            ints, dtype="<u4").reshape(-1, 1).view(np.uint8)
        if len(self._float_index):
            self._bytes[self._float_index] = np.ascontiguousarray(
                floats, dtype="<f4").reshape(-1, 1).view(np.uint8)
        return self._bytes.tobytes()


def _find(data: bytes, packed: bytes, size: int) -> np.ndarray | None:
    offsets = []
    for start in range(0, len(packed), size):
        needle = packed[start:start + size]
        offset = data.find(needle)
        if offset < 0 or data.find(needle, offset + 1) >= 0:
            return None
        offsets.append(offset)
    return np.array(offsets, dtype=np.int64)
