"""What imu_processing_node does to each emg/aux chunk, ROS-free: continuity, the layout (which
columns hold each IMU's x, y, z of the chosen sensor, learned from the channel names), the
core (BiosigliveImu or StreamingImu) and the output chunk."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from biosig_ros.processing.emg_pipeline import refuse_non_finite
from biosig_ros.processing.emg_processor import StepResult
from biosig_ros.processing.imu_processing import (
    BiosigliveImu, ImuProcessingSettings, StreamingImu, output_names, select_imu_channels)
from biosig_ros.processing.stream_continuity import (
    LATE, RESTART, ContinuitySettings, StreamContinuity)
from biosig_ros.signals import SignalChunk

SI_UNITS = {"acc": "m/s^2", "gyro": "rad/s"}


class ImuProcessor:
    """Aux chunks in, processed IMU chunks out; notify(level, text) reports layout events."""

    def __init__(self, settings: ImuProcessingSettings,
                 notify: Callable[[str, str], None] = lambda level, text: None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.notify = notify
        self._clock = clock  # rate and silence of the input (the node's clock)
        self.continuity: StreamContinuity | None = None
        self.layout: tuple | None = None
        self.layout_changes = 0
        self.refused = 0
        self.last_error = ""
        self.imus: list[str] = []
        self._columns: list[int] = []
        self._names: list[str] = []
        self._core = None

    def step(self, chunk: SignalChunk) -> StepResult:
        first, count = chunk.first_sample_index, chunk.sample_count
        if self.continuity is None:
            after = max(1, int(round(self.settings.restart_after_s * chunk.sample_rate)))
            self.continuity = StreamContinuity(ContinuitySettings(after), self._clock)
        verdict = self.continuity.step(first, count)
        if verdict.action == LATE:
            return StepResult(None, late=True)
        if verdict.action == RESTART and self._core is not None:
            self._core.reset()
            self.notify("warning", f"emg/aux restarted at sample {first}: filters reset")
        try:
            layout = (tuple(chunk.channel_names), float(chunk.sample_rate))
            if layout != self.layout:
                self._new_layout(layout)
            data = np.ascontiguousarray(chunk.data[:, self._columns])
            refuse_non_finite(data)
            out = self._process(chunk, data)
        except ValueError as error:
            self.refused += 1
            self.last_error = f"chunk {first} refused: {error}"
            return StepResult(None, verdict.missing, refused=True)
        return StepResult(out, verdict.missing)

    def _new_layout(self, layout: tuple) -> None:
        names, rate = layout
        s = self.settings
        self.layout = None  # until the new one is usable
        columns, imus = select_imu_channels(list(names), s.sensor)
        core = (BiosigliveImu(rate, len(imus), s) if s.mode == "biosiglive"
                else StreamingImu(rate, len(imus), s))
        text = f"{len(imus)} IMU(s) [{', '.join(imus)}], {s.sensor} at {rate:g} Hz"
        if self._core is not None:
            self.layout_changes += 1
            self.notify("warning", f"emg/aux layout changed: now {text}: filters re-initialised")
        else:
            self.notify("info", f"emg/aux layout: {text}")
        self.layout, self.imus, self._columns, self._core = layout, imus, columns, core
        self._names = output_names(imus, s)

    def _process(self, chunk: SignalChunk, data: np.ndarray) -> SignalChunk | None:
        s, n, rate = self.settings, len(data), chunk.sample_rate
        unit = "" if s.normalised else (chunk.unit if chunk.unit and "," not in chunk.unit
                                        else SI_UNITS[s.sensor])
        if s.mode == "streaming":
            values = self._core.process(data)
            return SignalChunk(values, chunk.first_sample_index, chunk.stamp, rate,
                               self._names, unit)
        core = self._core
        was_filling = core.filling
        output = core.process_imu(data.T.reshape(len(self.imus), 3, n))
        if was_filling:
            return None
        last = n - 1  # one value per call, at the chunk's last sample (as the EMG node)
        return SignalChunk(output[..., -1].reshape(1, -1), (chunk.first_sample_index + last) // n,
                           chunk.stamp + last / rate, rate / n, self._names, unit)
