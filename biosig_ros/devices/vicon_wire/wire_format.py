"""Byte layout of Vicon's DataStream (CG stream) protocol: primitives, object blocks, packets.

Everything is little-endian and unpadded. A string is a u32 byte count then the bytes; a vector
or set is a u32 count then the items; a map is a u32 count then key, value pairs. A packet is
u32 OBJECTS tag + u32 length + object blocks; an object block is u32 type id + u32 length +
body. The type ids are Vicon's (ViconCGStream/Enum.h).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Iterator

OBJECTS = 0x1A2B0001

# Stream objects (server -> client).
STREAM_INFO = 1
SUBJECT_INFO = 2
DEVICE_INFO = 3
CHANNEL_INFO = 4
FRAME_INFO = 5
LABELED_RECONS = 6
UNLABELED_RECONS = 7
LOCAL_SEGMENTS = 8
GLOBAL_SEGMENTS = 9
VOLTAGE_FRAME = 13
TIMECODE = 23
LATENCY_INFO = 26
CHANNEL_INFO_EXTRA = 34
APPLICATION_INFO = 37
FRAME_RATE_INFO = 39
PING = 42
# Requests (client -> server); KEEP_ALIVE also goes server -> client here, see connection.py.
OBJECT_ENUMS = 100001
REQUEST_FRAME = 100002
KEEP_ALIVE = 100003
CONTENTS = 100004
START_MULTICAST = 100005
STOP_MULTICAST = 100006
FILTER = 100007
REQUEST_NEXT_FRAME = 100008

HEADER = struct.Struct("<II")
U32 = struct.Struct("<I")
MAX_PACKET = 16 * 1024 * 1024    # far above any request a client sends; guards a bad length


class WireError(ValueError):
    """Bytes that do not follow the protocol."""


def u32(value: int) -> bytes:
    return U32.pack(value)


def string(text: str) -> bytes:
    data = text.encode("utf-8")
    return U32.pack(len(data)) + data


def sequence(items: Iterable[bytes]) -> bytes:
    """A vector/set of already-encoded items."""
    items = list(items)
    return U32.pack(len(items)) + b"".join(items)


def u32_set(values: Iterable[int]) -> bytes:
    values = sorted(set(values))         # std::set is ordered
    return U32.pack(len(values)) + struct.pack(f"<{len(values)}I", *values)


def block(type_id: int, body: bytes) -> bytes:
    """One object block: type id, length, body."""
    return HEADER.pack(type_id, len(body)) + body


def packet(blocks: Iterable[bytes]) -> bytes:
    body = b"".join(blocks)
    return HEADER.pack(OBJECTS, len(body)) + body


@dataclass
class WireObject:
    type_id: int
    body: bytes


def split_packet(payload: bytes) -> Iterator[WireObject]:
    """The object blocks of a packet body (after its 8-byte header)."""
    offset = 0
    while offset < len(payload):
        if offset + HEADER.size > len(payload):
            raise WireError(f"truncated object header at byte {offset}")
        type_id, length = HEADER.unpack_from(payload, offset)
        offset += HEADER.size
        if offset + length > len(payload):
            raise WireError(f"object {type_id} claims {length} bytes, "
                            f"{len(payload) - offset} left")
        yield WireObject(type_id, payload[offset:offset + length])
        offset += length


class Reader:
    """Sequential reads from one object body."""

    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise WireError(f"object body too short ({len(self.data)} bytes)")
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return values

    def u32(self) -> int:
        return self.take("<I")[0]

    def u32_set(self) -> set[int]:
        count = self.u32()
        return set(self.take(f"<{count}I")) if count else set()


def read_object_enums(body: bytes) -> set[int]:
    return Reader(body).u32_set()


def read_request_frame(body: bytes) -> bool:
    """RequestFrame's one field: True = stream (ServerPush), False = send one frame."""
    return bool(Reader(body).take("<?")[0])


def read_filter(body: bytes) -> dict[int, set[int]]:
    """Filter: map type id -> set of allowed filter ids (subject or device ids)."""
    reader = Reader(body)
    return {reader.u32(): reader.u32_set() for _ in range(reader.u32())}


def read_ping(body: bytes) -> int:
    return Reader(body).take("<Q")[0]
