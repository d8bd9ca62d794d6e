"""Walk a request's pickle opcodes as its bytes arrive, before anything is unpickled.

CPython's C unpickler trusts the lengths a pickle declares: BINBYTES8 / BYTEARRAY8 of 2^34
bytes allocate 16 GiB before reading a byte, a text PUT of index 999999999 grows the memo to
16 GB, and an opcode whose argument crosses the end of its FRAME makes 3.11's unpickler read
its length past the frame (a garbage size: MemoryError, or with BYTEARRAY8 a bytearray freed
while still exported, printed as `SystemError: deallocated bytearray object has exported
buffers` by CPython itself, where no except clause can catch it). The scan only does index
arithmetic on the received bytes, so it allocates nothing, and refuses all of that:
- any declared argument, frame or memo index beyond the request size limit;
- an opcode straddling the end of its frame;
- the protocol 5 opcodes a plain request never needs (bytearrays, out-of-band buffers);
  globals are refused by name by pickle_compat.loads_plain when decoding.
It resumes where it stopped, so a request dripped byte by byte is scanned once in total.
"""
from __future__ import annotations

import pickletools

from biosig_ros.bridge.legacy_protocol import RequestError

# Globals are left to pickle_compat.loads_plain, which refuses them by name before they run.
_FORBIDDEN = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_LENGTH_PREFIX = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
                  pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
                  pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
                  pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}
_TWO_LINES = -100  # GLOBAL and INST: "module\nname\n"
# opcode byte -> (name, argument size or a pickletools size code)
_OPCODES = {ord(op.code): (op.name, 0 if op.arg is None else _TWO_LINES
                           if op.arg.name == "stringnl_noescape_pair" else op.arg.n)
            for op in pickletools.opcodes}


class PickleRefused(RequestError):
    """The bytes are not a request this server unpickles; the message says why."""


class PickleScan:
    """Incremental opcode walk over a growing buffer; feed() -> True once STOP is reached."""

    __slots__ = ("limit", "pos", "frame_end", "complete")

    def __init__(self, limit: int):
        self.limit = limit
        self.pos = 0              # start of the next opcode not yet walked
        self.frame_end = None     # end offset of the current frame, if any
        self.complete = False

    def feed(self, buffer) -> bool:
        """Walk the complete opcodes of buffer from where the last call stopped; raise
        PickleRefused for a request to refuse; True when STOP has been reached (the request is
        buffer[:self.pos])."""
        size = len(buffer)
        while not self.complete and self.pos < size:
            start = self.pos
            entry = _OPCODES.get(buffer[start])
            if entry is None:
                raise PickleRefused(f"byte 0x{buffer[start]:02x} at offset {start} is not a "
                                    "pickle opcode")
            name, n = entry
            if name in _FORBIDDEN:
                raise PickleRefused(f"request uses the pickle opcode {name}, which a plain "
                                    "request never needs")
            end = self._argument_end(buffer, start, name, n)
            if self.frame_end is not None:
                # An argument not all received yet extends past a frame end already received.
                if start < self.frame_end < (end if end is not None else size + 1):
                    raise PickleRefused(f"opcode {name} at offset {start} crosses the end of "
                                        f"its frame (offset {self.frame_end})")
                if end == self.frame_end:
                    self.frame_end = None
            if end is None or end > size:
                return False      # argument not all there yet
            if name == "FRAME":
                self.frame_end = end + int.from_bytes(buffer[start + 1:end], "little")
                self._check_size(self.frame_end, "frame")
            elif name in _PUTS:
                self._check_memo(buffer, start, end, name)
            self.pos = end
            self.complete = name == "STOP"
        return self.complete

    def _argument_end(self, buffer, start: int, name: str, n: int) -> int | None:
        """End offset of the opcode at start (maybe beyond the buffer); None while unknown."""
        if n >= 0:
            return start + 1 + n
        if n in (pickletools.UP_TO_NEWLINE, _TWO_LINES):
            newline = buffer.find(b"\n", start + 1)
            if newline >= 0 and n == _TWO_LINES:
                newline = buffer.find(b"\n", newline + 1)
            return None if newline < 0 else newline + 1
        width, signed = _LENGTH_PREFIX[n]
        if start + 1 + width > len(buffer):
            return None
        length = int.from_bytes(buffer[start + 1:start + 1 + width], "little", signed=signed)
        if length < 0:
            raise PickleRefused(f"opcode {name} at offset {start} declares a negative length")
        end = start + 1 + width + length
        self._check_size(end, f"opcode {name}'s argument")
        return end

    def _check_size(self, end: int, what: str) -> None:
        if end > self.limit:
            raise PickleRefused(f"request declares a {what} ending at byte {end}, beyond the "
                                f"limit of {self.limit} bytes")

    def _check_memo(self, buffer, start: int, end: int, name: str) -> None:
        raw = bytes(buffer[start + 1:end])
        try:
            index = int(raw) if name == "PUT" else int.from_bytes(raw, "little")
        except ValueError:
            raise PickleRefused(f"PUT at offset {start} has no valid memo index") from None
        if not 0 <= index <= self.limit:
            raise PickleRefused(f"memo index {index} at offset {start} is beyond the limit of "
                                f"{self.limit}")
