"""What the Trigno simulator streams: EMG from a recording or synthetic, and synthetic aux rows."""
from __future__ import annotations

import numpy as np

from biosig_ros.devices import trigno_protocol as tp
from biosig_ros.errors import ConfigError


class EmgSource:
    """Samples x 16 slots of EMG in volts; rows(start, count) wraps when looping."""

    def __init__(self, data: np.ndarray, slots: list[int], loop: bool):
        data = np.asarray(data, dtype=float)
        if data.ndim != 2 or data.shape[0] == 0:
            raise ConfigError(f"EMG source must be samples x channels, got shape {data.shape}")
        if len(slots) != data.shape[1]:
            raise ConfigError(f"{data.shape[1]} EMG channels but {len(slots)} slots given")
        if any(not 1 <= s <= tp.SLOTS for s in slots) or len(set(slots)) != len(slots):
            raise ConfigError(f"slots must be distinct and within 1-{tp.SLOTS}, got {slots}")
        self.slots = list(slots)
        self.rows_by_slot = np.zeros((data.shape[0], tp.SLOTS), dtype=np.float32)
        self.rows_by_slot[:, [s - 1 for s in slots]] = data
        self.loop = loop

    @property
    def length(self) -> int:
        return self.rows_by_slot.shape[0]

    def rows(self, start: int, count: int) -> np.ndarray | None:
        """count rows from running index start, or None when a non-looping source is over."""
        if not self.loop and start + count > self.length:
            return None
        index = np.arange(start, start + count) % self.length
        return self.rows_by_slot[index]


def recording_source(path: str, key: str = "emg", slots: list[int] | None = None,
                     loop: bool = True) -> EmgSource:
    """EMG of a .bio recording (channels x samples, volts) placed in slots 1..N by default."""
    from biosig_ros.io.bio_file import load_bio
    from biosig_ros.paths import resolve_data_path

    content = load_bio(resolve_data_path(path))
    if key not in content:
        raise ConfigError(f"{path}: no key '{key}' (keys: {', '.join(map(str, content))})")
    data = np.asarray(content[key], dtype=float)
    if data.ndim != 2:
        raise ConfigError(f"{path}: '{key}' must be channels x samples, got {data.shape}")
    return EmgSource(data.T, slots or list(range(1, data.shape[0] + 1)), loop)


def synthetic_source(channels: int = 16, seconds: float = 4.0, rate: float = 2000.0,
                     seed: int = 0, slots: list[int] | None = None) -> EmgSource:
    """Reproducible EMG-like noise (bursts at 0.5 Hz, up to about 1 mV), looped."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    envelope = 1e-4 + 9e-4 * np.sin(np.pi * 0.5 * t[:, None] + np.arange(channels)) ** 2
    return EmgSource(rng.standard_normal((n, channels)) * envelope,
                     slots or list(range(1, channels + 1)), loop=True)


def synthetic_aux_rows(start: int, count: int, slots: list[int], legacy: bool,
                       rate: float) -> np.ndarray:
    """Aux rows for running aux samples start..start+count: each active slot reads 1 g on z
    plus a 0.5 Hz sway on x (acc, g); Avanti adds gyro (deg/s) and a constant field (uT)."""
    per_slot = tp.aux_values_per_slot(legacy)
    rows = np.zeros((count, tp.SLOTS * per_slot), dtype=np.float32)
    t = np.arange(start, start + count) / rate
    sway = 0.1 * np.sin(2 * np.pi * 0.5 * t)
    for slot in slots:
        base = (slot - 1) * per_slot
        rows[:, base + 0] = sway
        rows[:, base + 2] = 1.0
        if not legacy:
            rows[:, base + 3] = 10.0 * np.cos(2 * np.pi * 0.5 * t)
            rows[:, base + 6:base + 9] = (20.0, 0.0, -40.0)
    return rows
