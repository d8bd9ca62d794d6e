"""The last command an assist process published, kept in a small memory-mapped file that
outlives the process (not the machine: /dev/shm is cleared at boot).

A forward command controller holds the last command it received for as long as it is active.
When the assist process dies without ramping down (SIGKILL, a crash), a restarted one that
started from 0 would step the joint's torque from that held command to 0 with its first
message. With this memory the restarted process starts from the held command instead and
ramps it down at the rate limit.

File layout (little endian): sequence, time (s), n values (N.m), sequence again. A write
interrupted half way (the process killed during it) leaves two different sequence numbers:
the record is then not trusted.
"""
from __future__ import annotations

import math
import mmap
import os
import re
import struct
import tempfile
from pathlib import Path


def default_memory_path(domain: str, node: str, topic: str) -> Path:
    """One file per ROS domain, node and command topic (two graphs never share one)."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    key = re.sub(r"[^A-Za-z0-9.-]+", "_", f"d{domain or 0}/{node}/{topic}").strip("_")
    return base / "biosig_ros" / f"{key}.command"


class CommandMemory:
    def __init__(self, path: Path, joints: int):
        self.path = Path(path)
        self.joints = joints
        self._format = struct.Struct(f"<Qd{joints}dQ")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size != self._format.size:
                os.ftruncate(fd, 0)  # another layout (or new): nothing to recall
                os.ftruncate(fd, self._format.size)
            self._map = mmap.mmap(fd, self._format.size)
        finally:
            os.close(fd)
        self._sequence = 0

    def recall(self) -> tuple[list[float], float] | None:
        """The command left by the previous process and when it was written (clock seconds),
        or None when there is none that can be trusted (none, torn, non-finite)."""
        first, written, *values, last = self._format.unpack_from(self._map)
        if first == 0 or first != last or not math.isfinite(written):
            return None
        if not all(map(math.isfinite, values)):
            return None
        self._sequence = first
        return list(values), written

    def store(self, values: list[float], now: float) -> None:
        """Record a published command (a few microseconds: no system call)."""
        self._sequence += 1
        self._format.pack_into(self._map, 0, self._sequence, now, *values, self._sequence)

    def close(self) -> None:
        self._map.close()
