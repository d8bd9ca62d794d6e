"""The Delsys Trigno Control Utility (TCU) SDK protocol: pure framing and decoding, no sockets.

Facts (see shared/protocols.md, section 3): ASCII commands end with CRLF and a packet ends with
an empty line; every reply ends with CRLF CRLF and must be parsed by that delimiter, never by
recv() boundaries. Data ports carry rows of float32 (little-endian unless ENDIAN BIG), one value
per slot (EMG) or per slot and axis (aux); whole frames are emitted every 13.5 ms.
"""
from __future__ import annotations

import numpy as np

COMMAND_PORT = 50040
EMG_PORT_LEGACY = 50041
AUX_PORT_LEGACY = 50042
EMG_PORT_AVANTI = 50043
AUX_PORT_AVANTI = 50044

SLOTS = 16
FRAME_INTERVAL_S = 0.0135
EMG_SAMPLES_PER_FRAME_UPSAMPLED = 27     # 2000 Hz
EMG_SAMPLES_PER_FRAME_NATIVE = 26       # 1925.926 Hz
AUX_SAMPLES_PER_FRAME = 2               # 148.148 Hz
AUX_VALUES_PER_SLOT_LEGACY = 3          # acc x y z (g)
AUX_VALUES_PER_SLOT_AVANTI = 9          # acc xyz, gyro xyz, mag xyz (mode-dependent)

TERMINATOR = b"\r\n\r\n"
LINE_END = b"\r\n"
REPLY_OK = "OK"
REPLY_INVALID = "INVALID COMMAND"
REPLY_CANNOT = "CANNOT COMPLETE"


def data_ports(legacy: bool) -> tuple[int, int]:
    """(EMG port, aux port) of the TCU for legacy (backwards compatible) or Avanti mode."""
    return (EMG_PORT_LEGACY, AUX_PORT_LEGACY) if legacy else (EMG_PORT_AVANTI, AUX_PORT_AVANTI)


def aux_values_per_slot(legacy: bool) -> int:
    return AUX_VALUES_PER_SLOT_LEGACY if legacy else AUX_VALUES_PER_SLOT_AVANTI


def aux_row_floats(legacy: bool) -> int:
    """Floats per aux row: 48 (legacy) or 144 (Avanti)."""
    return SLOTS * aux_values_per_slot(legacy)


def sample_rate(samples_per_frame: int, frame_interval: float = FRAME_INTERVAL_S) -> float:
    """Samples per second of a stream that carries samples_per_frame per frame interval."""
    if samples_per_frame <= 0 or frame_interval <= 0:
        raise ValueError(f"invalid frame: {samples_per_frame} samples per {frame_interval} s")
    return samples_per_frame / frame_interval


def encode_commands(*commands: str) -> bytes:
    """One packet holding the commands: `A\\r\\nB\\r\\n\\r\\n` (upper case ASCII)."""
    if not commands:
        raise ValueError("no command to send")
    lines = []
    for command in commands:
        text = command.strip()
        if not text or "\r" in text or "\n" in text:
            raise ValueError(f"invalid Trigno command {command!r}")
        lines.append(text.upper().encode("ascii"))
    return LINE_END.join(lines) + TERMINATOR


def encode_reply(reply: str) -> bytes:
    """A reply (or the banner) as the server sends it."""
    return reply.encode("ascii") + TERMINATOR


class PacketSplitter:
    """Splits a byte stream into packets ending in CRLF CRLF, whatever recv() boundaries were;
    the remainder waits for the next feed()."""

    def __init__(self) -> None:
        self._buffer = b""

    def packets(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *complete, self._buffer = self._buffer.split(TERMINATOR)
        return complete

    @property
    def pending(self) -> bytes:
        return self._buffer


class ReplyParser(PacketSplitter):
    """Client side: one reply per packet."""

    def feed(self, data: bytes) -> list[str]:
        return [packet.decode("ascii", errors="replace").strip()
                for packet in self.packets(data)]


class CommandParser(PacketSplitter):
    """Server side: a packet ends with an empty line; every non-empty line of a packet is one
    command, answered in order."""

    def feed(self, data: bytes) -> list[str]:
        commands = []
        for packet in self.packets(data):
            for line in packet.split(LINE_END):
                text = line.decode("ascii", errors="replace").strip()
                if text:
                    commands.append(text.upper())
        return commands


class RowDecoder:
    """Turns a data port's byte stream into rows of float64, keeping partial rows for later.

    floats_per_row: 16 (EMG) or 48/144 (aux); big_endian after `ENDIAN BIG`.
    """

    def __init__(self, floats_per_row: int, big_endian: bool = False):
        if floats_per_row <= 0:
            raise ValueError("floats_per_row must be positive")
        self.floats_per_row = floats_per_row
        self.row_bytes = 4 * floats_per_row
        self._dtype = np.dtype(">f4" if big_endian else "<f4")
        self._remainder = b""

    def feed(self, data: bytes) -> np.ndarray:
        """Rows completed by data (rows x floats_per_row, float64), possibly zero rows."""
        buffer = self._remainder + data if self._remainder else data
        whole = len(buffer) - len(buffer) % self.row_bytes
        self._remainder = bytes(buffer[whole:])
        values = np.frombuffer(buffer, dtype=self._dtype, count=whole // 4)
        return values.reshape(-1, self.floats_per_row).astype(np.float64)

    def reset(self) -> None:
        self._remainder = b""

    @property
    def pending_bytes(self) -> int:
        return len(self._remainder)


def encode_rows(rows: np.ndarray, big_endian: bool = False) -> bytes:
    """Rows of floats as the server writes them (float32, little-endian by default)."""
    return np.ascontiguousarray(rows, dtype=">f4" if big_endian else "<f4").tobytes()


def parse_number(reply: str, what: str) -> float:
    """A numeric reply (`0.0135`, `27`), or ValueError naming the query."""
    try:
        return float(reply.split()[-1])
    except (ValueError, IndexError):
        raise ValueError(f"unexpected reply to {what}: {reply!r}") from None
