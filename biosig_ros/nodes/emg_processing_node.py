"""emg_processing_node: /emg/raw (SignalChunk, V) -> /emg/envelope (SignalChunk, V, or a
fraction of the MVC once one is known), with an MVC calibration service.

Each chunk is processed in the subscription callback (one compiled call, ~25 us of arithmetic
for 16 channels x 20 samples), and the received message, filled with the envelope, is published
before any bookkeeping: the envelope carries the input's stamps and running indices (divided by
the decimation when publish_rate is set) and channel names. Chunks that cannot be processed
are counted and reported, never half-applied to the filter state: wrong rate or channel count,
non-finite samples, late or repeated chunks (index below the next expected one). An index far
behind (over a second) is a restarted stream: the filters start again. Gaps (missing samples)
are counted; the envelope shows them too.

Service ~/calibrate_mvc (biosig_ros/srv/CalibrateMvc): records the envelope (before
normalisation) over the next `duration` seconds of input, computes the per-channel MVC the way
biosiglive's compute_mvc does (biosig_ros.processing.mvc), applies it and saves it to YAML
(request.output_file, else the parameter mvc_file), which the node loads at start.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rclpy.node import Node

from biosig_ros.errors import ConfigError
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.biosiglive_compat import BiosigliveRealTime, BiosigliveSettings
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings, EnvelopeStream
from biosig_ros.processing.mvc import MVC_METHODS, MvcCalibration, check_mvc, compute_mvc
from biosig_ros.ros.conversions import advance_stamp, msg_to_chunk, refill_msg
from biosig_ros.ros.diagnostics import ERROR, OK, STALE, WARN, Diagnostics
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import input_qos, output_qos
from biosig_ros.ros.service_lane import ServiceLane
from biosig_ros.settings import doc_field
from biosig_ros.srv import CalibrateMvc
from biosig_ros.stream_stats import StreamStats

MODES = ("streaming", "biosiglive")
BIOSIGLIVE_ARGUMENTS = ("band_pass_filter", "low_pass_filter", "moving_average", "centering",
                        "absolute_value", "moving_average_window", "bpf_lcut", "bpf_hcut",
                        "lpf_lcut", "lp_butter_order")


def _doc(default, text: str, **options):
    return doc_field(default, text, **options)


@dataclass
class EmgProcessingNodeSettings(EmgPipelineSettings):
    mode: str = _doc("streaming", "streaming (causal filters, every sample) | biosiglive "
                     "(RealTimeProcessing.process_emg, bit for bit: one value per chunk)")
    processing_window: int = _doc(0, "biosiglive mode: samples re-filtered per chunk (0 = 1 s)")
    publish_rate: float = _doc(0.0, "Hz of the published envelope (divides sample_rate); "
                               "0 = every input sample", runtime=True)
    mvc_file: str = _doc("", "MVC YAML loaded at start when it exists; calibrations save there",
                         runtime=True)
    mvc_window_s: float = _doc(1.0, "seconds of the largest envelope samples the MVC uses "
                               "(biosiglive's mvc_windows = 2000 at 2 kHz)", runtime=True)
    mvc_method: str = _doc("biosiglive", "biosiglive (its compute_mvc exactly) | "
                           "top_window_median", runtime=True)
    max_calibration_s: float = _doc(120.0, "longest MVC recording the service accepts (s)",
                                    runtime=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ConfigError(f"parameter 'mode' must be one of {', '.join(MODES)}, "
                              f"got {self.mode!r}")
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
        if not (math.isfinite(self.mvc_window_s) and self.mvc_window_s > 0):
            raise ConfigError(f"parameter 'mvc_window_s' must be a positive number of seconds, "
                              f"got {self.mvc_window_s!r}")
        if self.mvc_method not in MVC_METHODS:
            raise ConfigError(f"parameter 'mvc_method' must be one of {', '.join(MVC_METHODS)}, "
                              f"got {self.mvc_method!r}")
        if not (math.isfinite(self.max_calibration_s) and self.max_calibration_s > 0):
            raise ConfigError("parameter 'max_calibration_s' must be a positive number of seconds")
        if self.mode == "biosiglive":
            self.biosiglive_settings()  # its own checks (window larger than buffer...)
        elif self.processing_window:
            raise ConfigError("parameter 'processing_window' applies to mode 'biosiglive' only")

    def decimation(self) -> int:
        return 1 if not self.publish_rate else int(round(self.sample_rate / self.publish_rate))

    def biosiglive_settings(self) -> BiosigliveSettings:
        """The equivalent RealTimeProcessing parameters (normalisation is applied outside)."""
        if self.envelope == "mean":
            raise ConfigError("parameter 'envelope' cannot be 'mean' in mode 'biosiglive' "
                              "(its moving average is a median): use median, lowpass or none")
        return BiosigliveSettings(
            data_rate=self.sample_rate, channel_count=self.channel_count,
            processing_window=self.processing_window, band_pass_filter=self.bandpass,
            low_pass_filter=self.envelope == "lowpass", moving_average=self.envelope == "median",
            centering=self.centring, absolute_value=self.rectify,
            moving_average_window=self.envelope_window, bpf_lcut=self.bandpass_low_hz,
            bpf_hcut=self.bandpass_high_hz, lpf_lcut=self.lowpass_hz,
            lp_butter_order=self.lowpass_order)


@dataclass
class _Recording:
    """An MVC calibration in progress: envelope blocks over the next `needed` input samples."""

    needed: int
    received: int = 0
    blocks: list = field(default_factory=list)
    gaps: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class EmgProcessingNode(Node):
    """Raw EMG chunks in, envelope chunks out."""

    def __init__(self):
        super().__init__("emg_processing")
        self.settings = declare_settings(self, EmgProcessingNodeSettings,
                                         on_change=self._on_change)
        s = self.settings
        self._mvc_names: list[str] = []  # channel names the MVC was calibrated on, if known
        self._name_warning = ""
        mvc, self._mvc_source = self._initial_mvc()
        self._stream = EnvelopeStream(self._make_core(), s.sample_rate, mvc)
        self._lock = threading.Lock()
        self._stats = StreamStats()
        self._times: deque[float] = deque(maxlen=2000)
        self._late = self._bad = self._restarts = self._published = 0
        self._last_error = ""
        self._reported = (0, 0, 0)
        self._recording: _Recording | None = None
        self._names: list[str] = []

        self._publisher = self.create_publisher(SignalChunkMsg, "emg/envelope", output_qos())
        self._diagnostics = Diagnostics(self, hardware_id="emg")
        self._diagnostics.set(STALE, "waiting for /emg/raw", mode=s.mode, envelope=s.envelope,
                              mvc=self._mvc_source)
        # The handler waits for `duration` seconds of /emg/raw: it runs on its own lane.
        self._service_lane = ServiceLane(self)
        self._service_lane.create_service(CalibrateMvc, "calibrate_mvc", self._on_calibrate)
        self.create_subscription(SignalChunkMsg, "emg/raw", self._on_raw, input_qos())
        self.create_timer(1.0, self._update_diagnostics)
        rate = "every sample" if not s.publish_rate else f"{s.publish_rate:g} Hz"
        self.get_logger().info(
            f"ready: mode {s.mode}, {s.channel_count} channels at {s.sample_rate:g} Hz, envelope "
            f"{s.envelope}, publish {rate}, MVC: {self._mvc_source}; /emg/raw -> /emg/envelope")

    def _make_core(self):
        s = self.settings
        if s.mode == "biosiglive":
            equivalent = s.biosiglive_settings()
            self.get_logger().info(
                "biosiglive mode: RealTimeProcessing({:g}, {}).process_emg({})".format(
                    equivalent.data_rate, equivalent.processing_window, ", ".join(
                        f"{k}={getattr(equivalent, k)}" for k in BIOSIGLIVE_ARGUMENTS)))
            return BiosigliveRealTime(equivalent)
        return EmgPipeline(s, s.decimation())

    def _initial_mvc(self) -> tuple[list[float] | None, str]:
        s = self.settings
        if s.mvc_file:
            path = Path(resolve_data_path(s.mvc_file))
            if path.exists():
                if s.mvc:
                    raise ConfigError(f"parameters 'mvc' and 'mvc_file' ({path}) both give an "
                                      "MVC: keep one")
                calibration = MvcCalibration.load(path)
                if len(calibration.mvc) != s.channel_count:
                    raise ConfigError(f"MVC file {path} has {len(calibration.mvc)} channels, "
                                      f"parameter 'channel_count' is {s.channel_count}")
                self._mvc_names = list(calibration.channel_names)
                return calibration.mvc, f"file {path}"
            self.get_logger().warning(f"MVC file {path} does not exist yet: publishing volts "
                                      "until ~/calibrate_mvc is called")
        if s.mvc:
            return list(s.mvc), "parameter mvc"
        return None, "none (volts)"

    # --- processing (executor thread) --------------------------------------------------

    def _on_raw(self, msg: SignalChunkMsg) -> None:
        start = time.perf_counter()
        first = int(msg.first_sample_index)
        count = int(msg.sample_count)
        expected = self._stats.expected_index
        if expected is not None and first < expected:
            if expected - first <= self.settings.sample_rate:
                self._late += 1  # already processed that stretch: the filters cannot go back
                return
            self._restart(first, expected)
            expected = None
        missing = 0 if expected is None else max(0, first - expected)
        try:
            chunk = msg_to_chunk(msg)
            with self._lock:
                out, envelope = self._stream.step(chunk)
        except ValueError as error:
            self._stats.update(first, count)
            self._bad += 1
            self._last_error = f"chunk {first} refused: {error}"
            self.get_logger().error(self._last_error, throttle_duration_sec=5.0)
            return
        if out is not None:
            # The input message becomes the envelope (same frame and channel names): fewer
            # fields to set before publishing than a new message. Its stamp moves by whole
            # samples to the input sample of the first output sample.
            offset = round((out.stamp - chunk.stamp) * chunk.sample_rate)
            stamp = advance_stamp(msg.header.stamp, round(offset * 1e9 / chunk.sample_rate))
            self._publisher.publish(refill_msg(msg, out, stamp))
            self._published += 1
        # Bookkeeping after publishing: the envelope's subscribers do not wait for it.
        self._stats.update(first, count)
        if self._recording is not None:
            with self._lock:
                if self._recording is not None:
                    self._record(self._recording, envelope, count, missing)
        if chunk.channel_names != self._names:
            self._names = chunk.channel_names
            self._check_names()
        self._times.append(time.perf_counter() - start)

    def _check_names(self) -> None:
        """An MVC calibrated on other channels is still applied by column, but reported."""
        names, calibrated = self._names, self._mvc_names
        if self._stream.mvc is not None and calibrated and names and names != calibrated:
            self._name_warning = (f"MVC calibrated on channels {calibrated}, /emg/raw has "
                                  f"{names}: normalising column by column")
            self.get_logger().error(self._name_warning)
        else:
            self._name_warning = ""

    def _restart(self, first: int, expected: int) -> None:
        with self._lock:
            self._stream.reset()
        self._stats = StreamStats()
        self._restarts += 1
        self.get_logger().warning(f"/emg/raw restarted at sample {first} (expected {expected}): "
                                  "filters reset")

    @staticmethod
    def _record(recording: _Recording, envelope: np.ndarray, count: int, missing: int) -> None:
        if recording.done.is_set():
            return
        recording.blocks.append(np.array(envelope))
        recording.received += count
        recording.gaps += missing > 0
        if recording.received >= recording.needed:
            recording.done.set()

    # --- MVC calibration (service thread) ----------------------------------------------

    def _on_calibrate(self, request, response):
        s = self.settings
        duration = float(request.duration)
        response.success = False
        if not (math.isfinite(duration) and 0 < duration <= s.max_calibration_s):
            response.message = (f"duration must be above 0 and at most max_calibration_s "
                                f"({s.max_calibration_s:g} s), got {duration!r}")
            return response
        recording = _Recording(needed=int(math.ceil(duration * s.sample_rate)))
        with self._lock:
            if self._recording is not None:
                response.message = "an MVC calibration is already recording"
                return response
            self._recording = recording
        self.get_logger().info(f"MVC calibration: recording {duration:g} s of /emg/raw")
        finished = recording.done.wait(timeout=duration + 5.0)
        with self._lock:
            self._recording = None
        if not finished:
            response.message = (f"received {recording.received} of {recording.needed} samples "
                                f"in {duration + 5.0:g} s: is /emg/raw streaming?")
            return response
        return self._finish_calibration(request, response, recording, duration)

    def _finish_calibration(self, request, response, recording: _Recording, duration: float):
        s = self.settings
        envelope = np.concatenate(recording.blocks, axis=0) if recording.blocks else np.empty(
            (0, s.channel_count))
        if len(envelope) == 0:
            response.message = "no envelope sample during the recording (window still filling?)"
            return response
        rate = len(envelope) / (recording.received / s.sample_rate)
        window = max(1, int(round(s.mvc_window_s * rate)))
        try:
            mvc = check_mvc(compute_mvc(envelope, window, s.mvc_method), s.channel_count)
        except ConfigError as error:
            response.message = f"MVC not applied: {error} (is every electrode recording?)"
            return response
        names = list(self._names or [f"emg_{i}" for i in range(s.channel_count)])
        with self._lock:
            self._stream.set_mvc(mvc)
            self._mvc_source = "calibration"
            self._mvc_names = names
            self._name_warning = ""
        notes = []
        if window > len(envelope):
            notes.append(f"the {window}-sample MVC window is longer than the recording "
                         f"({len(envelope)} samples): all samples used, as biosiglive does")
        if recording.gaps:
            notes.append(f"{recording.gaps} gap(s) in the input during the recording")
        path_text = request.output_file or s.mvc_file
        if path_text:
            calibration = MvcCalibration(
                channel_names=names, mvc=[float(v) for v in mvc], method=s.mvc_method,
                window_samples=window, envelope_rate=float(rate), duration_s=duration,
                envelope={"mode": s.mode, "envelope": s.envelope,
                          "envelope_window": s.envelope_window,
                          "bandpass_hz": [s.bandpass_low_hz, s.bandpass_high_hz]
                          if s.bandpass else [], "sample_rate": s.sample_rate})
            try:
                path = calibration.save(resolve_data_path(path_text))
            except OSError as error:
                notes.append(f"NOT saved to {path_text}: {error}")
            else:
                self._mvc_source = f"calibration saved to {path}"
                notes.append(f"saved to {path}")
        else:
            notes.append("not saved (no output_file and no mvc_file parameter)")
        response.success = True
        response.channel_names = names
        response.mvc = [float(v) for v in mvc]
        response.message = "MVC applied; " + "; ".join(notes)
        self.get_logger().info(f"MVC calibration: {response.message}: "
                               + ", ".join(f"{n}={v:.3g} V" for n, v in zip(names, mvc)))
        return response

    # --- runtime parameters ------------------------------------------------------------

    def _on_change(self, updated: EmgProcessingNodeSettings, changed: list[str]) -> None:
        """Runtime parameters (validated by declare_settings): they leave the filters' state alone."""
        with self._lock:
            if "mvc" in changed:
                self._stream.set_mvc(updated.mvc or None)
                self._mvc_source = "parameter mvc" if updated.mvc else "none (volts)"
                self._mvc_names, self._name_warning = [], ""
            if "publish_rate" in changed and isinstance(self._stream.core, EmgPipeline):
                self._stream.core.decimation = updated.decimation()
            self.settings = updated
        self.get_logger().info("parameters changed: " + ", ".join(
            f"{k}={getattr(updated, k)}" for k in changed))

    # --- diagnostics -------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        stats = self._stats
        times = np.array(self._times) * 1e6 if self._times else np.zeros(1)
        counts = (stats.missing_samples + self._late, self._bad, self._restarts)
        previous, self._reported = self._reported, counts
        values = dict(
            input_rate_hz=stats.rate(), chunks=stats.messages,
            missing_samples=stats.missing_samples, gaps=stats.gaps, late_chunks=self._late,
            refused_chunks=self._bad, restarts=self._restarts, published_chunks=self._published,
            processing_p50_us=float(np.percentile(times, 50)),
            processing_max_us=float(times.max()), mvc=self._mvc_source,
            unit="fraction of MVC" if self._stream.mvc is not None else "V",
            calibration="recording" if self._recording is not None else "idle",
            mvc_channels=self._name_warning or ("as calibrated" if self._mvc_names else "-"))
        silence = stats.seconds_since_last()
        if silence is None and not self._bad:
            level, message = STALE, "waiting for /emg/raw"
        elif counts[1] > previous[1]:
            level, message = ERROR, self._last_error
        elif silence is not None and silence > 1.0:
            level, message = WARN, f"no /emg/raw for {silence:.1f} s"
        elif counts[0] > previous[0] or counts[2] > previous[2]:
            level, message = WARN, "missing, late or restarted input since the last report"
        elif self._name_warning:
            level, message = WARN, self._name_warning
        else:
            level, message = OK, "processing"
        self._diagnostics.set(level, message, **values)

    def close(self) -> None:
        self._service_lane.close()


def main() -> None:
    main_for(EmgProcessingNode, "emg_processing_node")


if __name__ == "__main__":
    main()
