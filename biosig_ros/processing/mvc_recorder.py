"""MVC calibration as a stream step: record the envelope over the next `duration` seconds of
input, then compute, describe and save the per-channel MVC (biosig_ros.processing.mvc).

ROS-free: the node starts a recording, feeds every processed chunk to step() and, once it
reports done (or a deadline passed), calls finish().
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.mvc import MvcCalibration, check_mvc, compute_mvc


@dataclass(frozen=True)
class MvcRecorderSettings:
    """sample_rate: Hz of the input; window_s: seconds of the largest envelope samples the MVC
    uses; method: mvc.MVC_METHODS; max_duration_s: longest recording accepted."""

    sample_rate: float
    window_s: float = 1.0
    method: str = "biosiglive"
    max_duration_s: float = 120.0


@dataclass
class MvcResult:
    """A finished calibration: values (V of the envelope), the calibration record to save,
    and notes for the user (window longer than the recording, gaps)."""

    mvc: np.ndarray
    calibration: MvcCalibration
    notes: list[str] = field(default_factory=list)


class MvcRecorder:
    """One recording at a time: start(duration), step(envelope, count, missing) per chunk,
    finish(names, envelope_description) once done."""

    def __init__(self, settings: MvcRecorderSettings):
        self.settings = settings
        self.duration = 0.0
        self._reset()

    def _reset(self) -> None:
        self.needed = 0
        self.received = 0
        self.gaps = 0
        self._blocks: list[np.ndarray] = []
        self.recording = False

    @property
    def done(self) -> bool:
        return self.recording and self.received >= self.needed

    def start(self, duration: float) -> None:
        """ValueError with the reason when the duration is out of range or a recording runs."""
        limit = self.settings.max_duration_s
        if not (math.isfinite(duration) and 0 < duration <= limit):
            raise ValueError(f"duration must be above 0 and at most max_calibration_s "
                             f"({limit:g} s), got {duration!r}")
        if self.recording:
            raise ValueError("an MVC calibration is already recording")
        self._reset()
        self.recording = True
        self.duration = float(duration)
        self.needed = int(math.ceil(duration * self.settings.sample_rate))

    def step(self, envelope: np.ndarray, count: int, missing: int = 0) -> bool:
        """Adds the envelope (samples x channels, before normalisation) of a chunk of `count`
        input samples that followed `missing` lost ones; True once the recording is complete."""
        if not self.recording or self.done:
            return self.done
        self._blocks.append(np.array(envelope))
        self.received += count
        self.gaps += missing > 0
        return self.done

    def cancel(self) -> str:
        """Stops the recording; the reason why it did not complete."""
        message = (f"received {self.received} of {self.needed} samples: is the input "
                   "streaming?")
        self._reset()
        return message

    def finish(self, channel_names: list[str], envelope_description: dict) -> MvcResult:
        """The MVC of the recording (ValueError with the reason when it cannot be computed or
        is zero on a channel); the recorder is then free for the next one."""
        s = self.settings
        blocks, received, gaps = self._blocks, self.received, self.gaps
        self._reset()
        blocks = [b for b in blocks if len(b)]
        if not blocks:
            raise ValueError("no envelope sample during the recording (window still filling?)")
        envelope = np.concatenate(blocks, axis=0)
        rate = len(envelope) / (received / s.sample_rate)
        window = max(1, int(round(s.window_s * rate)))
        try:
            mvc = check_mvc(compute_mvc(envelope, window, s.method), envelope.shape[1])
        except ConfigError as error:
            raise ValueError(f"MVC not applied: {error} (is every electrode recording?)") \
                from None
        names = list(channel_names) or [f"emg_{i}" for i in range(envelope.shape[1])]
        notes = []
        if window > len(envelope):
            notes.append(f"the {window}-sample MVC window is longer than the recording "
                         f"({len(envelope)} samples): all samples used, as biosiglive does")
        if gaps:
            notes.append(f"{gaps} gap(s) in the input during the recording")
        calibration = MvcCalibration(
            channel_names=names, mvc=[float(v) for v in mvc], method=s.method,
            window_samples=window, envelope_rate=float(rate), duration_s=self.duration,
            envelope=dict(envelope_description))
        return MvcResult(mvc, calibration, notes)
