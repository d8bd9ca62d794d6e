"""What emg_processing_node does to each chunk, ROS-free: continuity (late, repeated, restarted
chunks, gaps), the channel layout learned from the stream, the envelope (streaming or
biosiglive-compatible core), the MVC (applied when it fits the stream) and MVC calibration.

The layout is the list of channel names a chunk carries (its channel count is their number).
With channel_count 0 (the default) the first chunk sets it; a chunk with another layout later
re-initialises the filters for it (reported through `notify`), since their state belongs to
other electrodes. With channel_count set, a chunk with another count is refused.
An MVC (parameter, file or calibration) is checked against the stream's channel count: one of
another count is not applied (the envelope stays in V, `mvc_problem` says why).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.biosiglive_compat import BiosigliveRealTime, BiosigliveSettings
from biosig_ros.processing.emg_pipeline import (
    EmgPipeline, EmgPipelineSettings, EnvelopeStream, OutputIndex)
from biosig_ros.processing.mvc import MVC_METHODS, check_mvc
from biosig_ros.processing.mvc_recorder import MvcRecorder, MvcRecorderSettings, MvcResult
from biosig_ros.processing.stream_continuity import (
    LATE, RESTART, ContinuitySettings, StreamContinuity)
from biosig_ros.settings import doc_field, realtime_priority_field, require_choice
from biosig_ros.signals import SignalChunk

MODES = ("streaming", "biosiglive")


def _doc(default, text: str, **options):
    return doc_field(default, text, **options)


@dataclass
class EmgProcessingSettings(EmgPipelineSettings):
    """The node's parameters: the chain's, plus mode, output rate, MVC and diagnostics."""

    channel_count: int = _doc(0, "channels of the raw EMG: 0 = learned from the stream (names "
                              "and count of the first chunk; a new layout re-initialises the "
                              "filters); N = chunks with another count are refused",
                              range=(0, 1024))
    mode: str = _doc("streaming", "streaming (causal filters, every sample) | biosiglive "
                     "(RealTimeProcessing.process_emg, bit for bit: one value per chunk)")
    processing_window: int = _doc(0, "biosiglive mode: samples re-filtered per chunk (0 = 1 s)",
                                  range=(0, 1_000_000))
    publish_rate: float = _doc(0.0, "Hz of the published envelope (divides sample_rate); "
                               "0 = every input sample; output indices continue monotonically "
                               "across a change", range=(0.0, 1e6), runtime=True)
    mvc_file: str = _doc("", "MVC YAML loaded at start when it exists; calibrations save there",
                         runtime=True)
    mvc_window_s: float = _doc(1.0, "seconds of the largest envelope samples the MVC uses "
                               "(biosiglive's mvc_windows = 2000 at 2 kHz)", range=(1e-3, 3600.0),
                               runtime=True)
    mvc_method: str = _doc("biosiglive", "biosiglive (its compute_mvc exactly) | "
                           "top_window_median", runtime=True)
    max_calibration_s: float = _doc(120.0, "longest MVC recording the service accepts (s)",
                                    range=(1e-3, 3600.0), runtime=True)
    restart_after_s: float = _doc(1.0, "a chunk starting more than this many seconds of samples "
                                  "behind the expected index is a restarted stream (filters "
                                  "reset); less is a late chunk (dropped)", range=(1e-3, 3600.0))
    loss_window_s: float = _doc(10.0, "diagnostics stay WARN this long after input samples were "
                                "lost, late or refused", range=(0.1, 3600.0))
    realtime_priority: int = realtime_priority_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("mode", self.mode, MODES)
        if not (math.isfinite(self.publish_rate) and 0 <= self.publish_rate <= self.sample_rate):
            raise ConfigError(f"parameter 'publish_rate' must be between 0 and sample_rate "
                              f"({self.sample_rate:g} Hz), got {self.publish_rate!r}")
        if self.publish_rate:
            ratio = self.sample_rate / self.publish_rate
            if abs(ratio - round(ratio)) > 1e-6 * ratio:
                raise ConfigError(f"parameter 'publish_rate' ({self.publish_rate:g} Hz) must "
                                  f"divide sample_rate ({self.sample_rate:g} Hz) a whole number "
                                  "of times")
            if self.mode == "biosiglive":
                raise ConfigError("parameter 'publish_rate' must be 0 in mode 'biosiglive' (it "
                                  "publishes one envelope value per chunk, as biosiglive)")
        for name in ("mvc_window_s", "max_calibration_s", "restart_after_s", "loss_window_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"parameter '{name}' must be a positive number of seconds, "
                                  f"got {value!r}")
        require_choice("mvc_method", self.mvc_method, MVC_METHODS)
        if self.mode == "biosiglive":
            self.biosiglive_settings()  # its own checks (window larger than buffer...)
        elif self.processing_window:
            raise ConfigError("parameter 'processing_window' applies to mode 'biosiglive' only")

    def decimation(self) -> int:
        return 1 if not self.publish_rate else int(round(self.sample_rate / self.publish_rate))

    def biosiglive_settings(self, channels: int = 0) -> BiosigliveSettings:
        """The equivalent RealTimeProcessing parameters (normalisation is applied outside)."""
        if self.envelope in ("mean", "rms"):
            raise ConfigError(f"parameter 'envelope' cannot be '{self.envelope}' in mode "
                              "'biosiglive' (its moving average is a median): use median, "
                              "lowpass or none")
        return BiosigliveSettings(
            data_rate=self.sample_rate, channel_count=channels or self.channel_count or 1,
            processing_window=self.processing_window, band_pass_filter=self.bandpass,
            low_pass_filter=self.envelope == "lowpass", moving_average=self.envelope == "median",
            centering=self.centring, absolute_value=self.rectify,
            moving_average_window=self.envelope_window, bpf_lcut=self.bandpass_low_hz,
            bpf_hcut=self.bandpass_high_hz, lpf_lcut=self.lowpass_hz,
            lp_butter_order=self.lowpass_order)

    def recorder_settings(self) -> MvcRecorderSettings:
        return MvcRecorderSettings(self.sample_rate, self.mvc_window_s, self.mvc_method,
                                   self.max_calibration_s)

    def envelope_description(self) -> dict:
        """The envelope settings an MVC is saved with."""
        return {"mode": self.mode, "envelope": self.envelope,
                "envelope_window": self.envelope_window,
                "bandpass_hz": [self.bandpass_low_hz, self.bandpass_high_hz]
                if self.bandpass else [], "sample_rate": self.sample_rate}


class StepResult(NamedTuple):
    """A chunk's outcome: the output chunk (None: nothing to publish), the envelope before
    normalisation, samples lost before it, and whether it was late (dropped) or refused."""

    output: SignalChunk | None
    missing: int = 0
    late: bool = False
    refused: bool = False


def _names_text(names) -> str:
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} channels [{shown}]"


def warm_up(settings: EmgProcessingSettings) -> None:
    """Step a throwaway processor with these settings once, on zeros: the compiled kernels
    (numba's cache) and filter designs load now, not on the stream's first chunk (about
    0.3 s, during which the first envelope waits)."""
    channels = settings.channel_count or 1
    EmgProcessor(settings).step(SignalChunk(
        np.zeros((20, channels)), 0, 0.0, settings.sample_rate,
        [f"warm_up{k}" for k in range(channels)], "V"))


class EmgProcessor:
    """Chunks of raw EMG in, envelope chunks out; notify(level, text) reports events
    ("info" | "warning" | "error"): layout learned or changed, restarts, MVC problems."""

    def __init__(self, settings: EmgProcessingSettings, mvc=None, mvc_names=(),
                 mvc_source: str = "none (volts)",
                 notify: Callable[[str, str], None] = lambda level, text: None,
                 clock: Callable[[], float] = time.monotonic):
        """clock: seconds of the input's rate and silence (the node's clock: sim time under
        use_sim_time)."""
        self.settings = settings
        self.notify = notify
        self.continuity = StreamContinuity(ContinuitySettings(
            max(1, int(round(settings.restart_after_s * settings.sample_rate)))), clock)
        self.recorder = MvcRecorder(settings.recorder_settings())
        self.layout: list[str] | None = None
        self.layout_changes = 0
        self.refused = 0
        self.last_error = ""
        self.stream: EnvelopeStream | None = None
        self._index = OutputIndex(settings.decimation())
        self.mvc_values = None if mvc is None or len(mvc) == 0 else [float(v) for v in mvc]
        self.mvc_names = list(mvc_names)
        self.mvc_source = mvc_source
        self.mvc_problem = ""   # an MVC that does not fit the stream: not applied
        self.name_warning = ""  # an MVC calibrated on other channel names: applied by column
        self.calibration_stopped = ""  # why a recording in progress was cancelled
        if settings.channel_count:
            self._build(settings.channel_count)  # ready before the first chunk

    # --- the stream ----------------------------------------------------------------------

    def _build(self, channels: int) -> None:
        s = self.settings
        if s.mode == "biosiglive":
            core = BiosigliveRealTime(s.biosiglive_settings(channels))
        else:
            core = EmgPipeline(s, channels=channels, index=self._index)
        self.stream = EnvelopeStream(core, s.sample_rate)
        self._apply_mvc()

    @property
    def unit_is_volts(self) -> bool:
        return self.stream is None or self.stream.mvc is None

    def step(self, chunk: SignalChunk) -> StepResult:
        """One chunk: dropped when late, refused (counted, `last_error`) when it cannot be
        processed, else processed (after a reset when the stream restarted)."""
        first, count = chunk.first_sample_index, chunk.sample_count
        verdict = self.continuity.step(first, count)
        if verdict.action == LATE:
            return StepResult(None, late=True)
        if verdict.action == RESTART:
            if self.stream is not None:
                self.stream.reset()
            self.notify("warning", f"input restarted at sample {first} (expected "
                        f"{verdict.expected}): filters reset")
        try:
            if chunk.channel_names != self.layout:
                self._new_layout(chunk.channel_names)
            out, envelope = self.stream.step(chunk)
        except ValueError as error:
            self.refused += 1
            self.last_error = f"chunk {first} refused: {error}"
            return StepResult(None, verdict.missing, refused=True)
        if self.recorder.recording:
            self.recorder.step(envelope, count, verdict.missing)
        return StepResult(out, verdict.missing)

    def _new_layout(self, names: list[str]) -> None:
        s, n = self.settings, len(names)
        if s.channel_count and n != s.channel_count:
            raise ValueError(f"{n} channels, parameter 'channel_count' is {s.channel_count}")
        if n == 0:
            raise ValueError("no channel names (the channel count is their number)")
        previous = self.layout
        self.layout = list(names)
        if previous is None:
            if self.stream is None:
                self._build(n)
            self.notify("info", f"input layout: {_names_text(names)}")
        else:
            self.layout_changes += 1
            if self.recorder.recording:
                self.recorder.cancel()
                self.calibration_stopped = "the input's channel layout changed during the recording"
            self._build(n)
            self.notify("warning", f"input layout changed from {_names_text(previous)} to "
                        f"{_names_text(names)}: filters re-initialised for the new layout")
        self._apply_mvc()

    # --- MVC -----------------------------------------------------------------------------

    def _apply_mvc(self) -> None:
        """Applies the MVC when it fits the stream's channel count; reports when it does not,
        or when it was calibrated on other channel names."""
        if self.stream is None:
            return
        values, channels = self.mvc_values, self.stream.core.channel_count
        problem = ""
        if values is not None and len(values) != channels:
            problem = (f"MVC ({self.mvc_source}) has {len(values)} channels, the input has "
                       f"{channels}: not applied, publishing V")
            values = None
        self.stream.set_mvc(values)
        if problem and problem != self.mvc_problem:
            self.notify("error", problem)
        self.mvc_problem = problem
        names, calibrated = self.layout, self.mvc_names
        warning = ""
        if values is not None and calibrated and names and names != calibrated:
            warning = (f"MVC calibrated on channels {calibrated}, the input has {names}: "
                       "normalising column by column")
            if warning != self.name_warning:
                self.notify("error", warning)
        self.name_warning = warning

    def set_mvc(self, values, source: str, names=()) -> None:
        """A new MVC (None/empty = volts). ConfigError when it does not fit a known layout."""
        values = None if values is None or len(values) == 0 else [float(v) for v in values]
        if values is not None and self.stream is not None:
            check_mvc(values, self.stream.core.channel_count)
        self.mvc_values, self.mvc_source, self.mvc_names = values, source, list(names)
        self._apply_mvc()

    # --- runtime settings and calibration ------------------------------------------------

    def change(self, updated: EmgProcessingSettings, changed: list[str]) -> None:
        """Runtime parameters (ConfigError to refuse): they leave the filters' state alone."""
        if "mvc" in changed:
            self.set_mvc(updated.mvc, "parameter mvc" if updated.mvc else "none (volts)")
        if "publish_rate" in changed:
            next_input = self.continuity.expected_index or 0
            self._index.change(updated.decimation(), next_input)
        self.settings = updated
        if not self.recorder.recording:
            self.recorder = MvcRecorder(updated.recorder_settings())

    def start_calibration(self, duration: float) -> None:
        """ValueError with the reason when it cannot start."""
        self.recorder.start(duration)
        self.calibration_stopped = ""

    def finish_calibration(self) -> MvcResult:
        """Computes the recorded MVC and applies it (ValueError with the reason)."""
        result = self.recorder.finish(self.layout or [], self.settings.envelope_description())
        self.set_mvc(result.mvc, "calibration", result.calibration.channel_names)
        return result


__all__ = ["EmgProcessingSettings", "EmgProcessor", "StepResult", "MODES"]
