"""ROS-free twins of the package's messages: what the core produces and consumes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SignalChunk:
    """Consecutive samples of a multi-channel signal at a constant rate.

    data is samples x channels (float64). stamp is the acquisition time of the first sample in
    seconds (POSIX epoch); first_sample_index counts samples since the stream started.
    """

    data: np.ndarray
    first_sample_index: int
    stamp: float
    sample_rate: float
    channel_names: list[str]
    unit: str = "V"

    @property
    def sample_count(self) -> int:
        return int(self.data.shape[0])

    @property
    def next_sample_index(self) -> int:
        return self.first_sample_index + self.sample_count


@dataclass
class MarkerFrame:
    """One motion-capture frame: positions are markers x 3 in metres, NaN when occluded."""

    positions: np.ndarray
    marker_names: list[str]
    frame_number: int
    stamp: float
    frame_rate: float
    subject: str = ""
    occluded: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=float)
        if self.occluded is None:
            self.occluded = np.isnan(self.positions).any(axis=1)
        else:
            self.occluded = np.asarray(self.occluded, dtype=bool)
        # An occluded marker never carries a stale position.
        self.positions[self.occluded] = np.nan
