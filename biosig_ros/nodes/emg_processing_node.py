"""emg_processing_node: emg/raw (SignalChunk, V) -> emg/envelope (SignalChunk, V, or a
fraction of the MVC once one is known), with an MVC calibration service.

The node translates topics and parameters; what happens to a chunk (continuity, the layout
learned from the stream, the envelope, the MVC, calibration) is
biosig_ros.processing.emg_processor.EmgProcessor. Each chunk is processed in the subscription
callback, and the received message, filled with the envelope, is published at once: it
carries the input's stamps, running indices (divided by the decimation when publish_rate is
set) and channel names.

Service ~/calibrate_mvc (biosig_ros/srv/CalibrateMvc): an async callback on the node's own
(single-threaded) executor. It starts a recording of the envelope over the next `duration`
seconds of input and awaits its end while the subscription keeps processing chunks; it then
computes the MVC the way biosiglive's compute_mvc does, applies it and saves it to YAML
(request.output_file, else the parameter mvc_file) in a worker thread.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.task import Future

from biosig_ros.errors import ConfigError
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.emg_processor import EmgProcessingSettings, EmgProcessor, warm_up
from biosig_ros.processing.mvc import MvcCalibration
from biosig_ros.ros.conversions import advance_stamp, msg_to_chunk, refill_msg
from biosig_ros.ros.diagnostics import ERROR, OK, STALE, WARN, Diagnostics, loss_window
from biosig_ros.ros.node_context import node_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.node_setup import setup_or_destroy
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import input_qos, output_qos
from biosig_ros.srv import CalibrateMvc

EmgProcessingNodeSettings = EmgProcessingSettings  # the node's parameters (older name)
BIOSIGLIVE_ARGUMENTS = ("band_pass_filter", "low_pass_filter", "moving_average", "centering",
                        "absolute_value", "moving_average_window", "bpf_lcut", "bpf_hcut",
                        "lpf_lcut", "lp_butter_order")
CALIBRATION_GRACE_S = 5.0  # beyond the duration, before a silent input fails the calibration


class EmgProcessingNode(Node):
    """Raw EMG chunks in, envelope chunks out."""

    def __init__(self):
        super().__init__("emg_processing")
        setup_or_destroy(self, self._setup)

    def _setup(self) -> None:
        self.settings = s = declare_settings(self, EmgProcessingSettings,
                                             on_change=self._on_change)
        apply_priorities(self, s.realtime_priority)
        mvc, names, source = self._initial_mvc()
        if s.mode == "biosiglive":
            self._log_biosiglive_call()
        self._processor = EmgProcessor(s, mvc, names, source, notify=self._notify,
                                       clock=node_seconds(self))
        self._losses = loss_window(self, s.loss_window_s)
        self._times: deque[float] = deque(maxlen=2000)
        self._published = 0
        self._calibration: Future | None = None

        self._publisher = self.create_publisher(SignalChunkMsg, "emg/envelope", output_qos())
        self._diagnostics = Diagnostics(self, hardware_id="emg")
        self._diagnostics.set(STALE, "waiting for emg/raw", mode=s.mode, envelope=s.envelope,
                              mvc=source)
        # Its own callback group: the default group would stay taken while the coroutine
        # awaits, holding back the very subscription that brings the data.
        self.create_service(CalibrateMvc, "~/calibrate_mvc", self._on_calibrate,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(SignalChunkMsg, "emg/raw", self._on_raw, input_qos())
        self.create_timer(1.0, self._update_diagnostics)
        # Right after the node listens, before the first chunk comes (chunks that come
        # meanwhile wait in the subscription's queue).
        self._warm_up_timer = self.create_timer(0.0, self._warm_up)
        rate = "every sample" if not s.publish_rate else f"{s.publish_rate:g} Hz"
        channels = s.channel_count or "learned from the stream"
        self.get_logger().info(
            f"ready: mode {s.mode}, channels: {channels}, {s.sample_rate:g} Hz, envelope "
            f"{s.envelope}, publish {rate}, MVC: {source}; emg/raw -> emg/envelope")

    def _warm_up(self) -> None:
        self.destroy_timer(self._warm_up_timer)
        try:
            warm_up(self.settings)
        except Exception as error:  # noqa: BLE001 - only the first chunk is slower then
            self.get_logger().warning(f"warm-up failed ({error}): the first chunk will "
                                      "load the processing code")

    def _log_biosiglive_call(self) -> None:
        equivalent = self.settings.biosiglive_settings()
        self.get_logger().info("biosiglive mode: RealTimeProcessing({:g}, {}).process_emg({})"
                               .format(equivalent.data_rate, equivalent.processing_window,
                                       ", ".join(f"{k}={getattr(equivalent, k)}"
                                                 for k in BIOSIGLIVE_ARGUMENTS)))

    def _initial_mvc(self) -> tuple[list[float] | None, list[str], str]:
        s = self.settings
        if s.mvc_file:
            path = Path(resolve_data_path(s.mvc_file))
            if path.exists():
                if s.mvc:
                    raise ConfigError(f"parameters 'mvc' and 'mvc_file' ({path}) both give an "
                                      "MVC: keep one")
                calibration = MvcCalibration.load(path)
                if s.channel_count and len(calibration.mvc) != s.channel_count:
                    raise ConfigError(f"MVC file {path} has {len(calibration.mvc)} channels, "
                                      f"parameter 'channel_count' is {s.channel_count}")
                return calibration.mvc, list(calibration.channel_names), f"file {path}"
            self.get_logger().warning(f"MVC file {path} does not exist yet: publishing volts "
                                      "until ~/calibrate_mvc is called")
        if s.mvc:
            return list(s.mvc), [], "parameter mvc"
        return None, [], "none (volts)"

    def _notify(self, level: str, text: str) -> None:
        # One call site per severity: rclpy refuses a call site whose severity changes.
        logger = self.get_logger()
        if level == "error":
            logger.error(text)
        elif level == "warning":
            logger.warning(text)
        else:
            logger.info(text)

    # --- processing (executor thread) --------------------------------------------------

    def _on_raw(self, msg: SignalChunkMsg) -> None:
        start = time.perf_counter()
        processor = self._processor
        try:
            chunk = msg_to_chunk(msg)
        except ValueError as error:  # data and channel names that do not fit together
            chunk = None
            processor.refused += 1
            processor.last_error = f"chunk {msg.first_sample_index} refused: {error}"
        if chunk is not None:
            result = processor.step(chunk)
            out = result.output
            if out is not None:
                # The input message becomes the envelope (same frame and channel names): fewer
                # fields to set before publishing than a new message. Its stamp moves by whole
                # samples to the input sample of the first output sample.
                offset = round((out.stamp - chunk.stamp) * chunk.sample_rate)
                stamp = advance_stamp(msg.header.stamp,
                                      round(offset * 1e9 / chunk.sample_rate))
                self._publisher.publish(refill_msg(msg, out, stamp))
                self._published += 1
            self._losses.record(result.missing, "missing samples")
            self._losses.record(int(result.late) * chunk.sample_count, "late chunks")
            refused = result.refused
        else:
            refused = True
        if refused:
            self._losses.record(max(1, int(msg.sample_count)), "refused chunks")
            self.get_logger().error(processor.last_error, throttle_duration_sec=5.0)
        calibration = self._calibration
        if calibration is not None and not calibration.done():
            if processor.recorder.done:
                calibration.set_result(True)
            elif not processor.recorder.recording:  # cancelled (new layout)
                calibration.set_result(False)
        self._times.append(time.perf_counter() - start)

    # --- MVC calibration (a coroutine on the executor) ---------------------------------

    async def _on_calibrate(self, request, response):
        response.success = False
        duration = float(request.duration)
        try:
            self._processor.start_calibration(duration)
        except ValueError as error:
            response.message = str(error)
            return response
        self._calibration = finished = Future()
        deadline = self.create_timer(duration + CALIBRATION_GRACE_S,
                                     lambda: finished.done() or finished.set_result(False))
        self.get_logger().info(f"MVC calibration: recording {duration:g} s of emg/raw")
        try:
            complete = await finished
        finally:
            self.destroy_timer(deadline)
            self._calibration = None
        if not complete:
            stopped = self._processor.calibration_stopped
            response.message = (f"MVC not recorded: {stopped}" if stopped
                                else self._processor.recorder.cancel())
            return response
        try:
            result = self._processor.finish_calibration()
        except ValueError as error:
            response.message = str(error)
            return response
        notes = list(result.notes)
        path_text = request.output_file or self.settings.mvc_file
        if path_text:
            notes.append(await self._save(result.calibration, path_text))
        else:
            notes.append("not saved (no output_file and no mvc_file parameter)")
        names = result.calibration.channel_names
        response.success = True
        response.channel_names = names
        response.mvc = [float(v) for v in result.mvc]
        response.message = "MVC applied; " + "; ".join(notes)
        self.get_logger().info(f"MVC calibration: {response.message}: "
                               + ", ".join(f"{n}={v:.3g} V" for n, v in zip(names, result.mvc)))
        return response

    async def _save(self, calibration: MvcCalibration, path_text: str) -> str:
        """Writes the file in a worker thread (an fsync may take long); the executor goes on."""
        saved = Future()

        def write():
            try:
                saved.set_result(f"saved to {calibration.save(resolve_data_path(path_text))}")
            except OSError as error:
                saved.set_result(f"NOT saved to {path_text}: {error}")

        threading.Thread(target=write, name="mvc-save", daemon=True).start()
        note = await saved
        if note.startswith("saved to "):
            self._processor.mvc_source = f"calibration {note}"
        return note

    # --- runtime parameters ------------------------------------------------------------

    def _on_change(self, updated: EmgProcessingSettings, changed: list[str]) -> None:
        """Runtime parameters (validated by declare_settings); ConfigError refuses them."""
        self._processor.change(updated, changed)
        self.settings = updated
        self.get_logger().info("parameters changed: " + ", ".join(
            f"{k}={getattr(updated, k)}" for k in changed))

    # --- diagnostics -------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        p = self._processor
        continuity = p.continuity
        stats = continuity.stats
        times = np.array(self._times) * 1e6 if self._times else np.zeros(1)
        values = dict(
            input_rate_hz=stats.rate(), chunks=stats.messages,
            channels=len(p.layout) if p.layout else self.settings.channel_count,
            layout_changes=p.layout_changes,
            missing_samples=continuity.missing_total, gaps=continuity.gaps_total,
            late_chunks=continuity.late, refused_chunks=p.refused,
            restarts=continuity.restarts, published_chunks=self._published,
            lost_in_window=self._losses.summary()[0],
            processing_p50_us=float(np.percentile(times, 50)),
            processing_max_us=float(times.max()), mvc=p.mvc_source,
            unit="V" if p.unit_is_volts else "fraction of MVC",
            calibration="recording" if p.recorder.recording else "idle",
            mvc_channels=p.name_warning or ("as calibrated" if p.mvc_names else "-"))
        silence = stats.seconds_since_last()
        losses = self._losses.message()
        if silence is None and not p.refused:
            level, message = STALE, "waiting for emg/raw"
        elif p.mvc_problem:
            level, message = ERROR, p.mvc_problem
        elif silence is not None and silence > 1.0:
            level, message = WARN, f"no emg/raw for {silence:.1f} s"
        elif losses:
            level, message = WARN, losses + (f"; last refused: {p.last_error}"
                                             if "refused" in losses else "")
        elif p.name_warning:
            level, message = WARN, p.name_warning
        else:
            level, message = OK, "processing"
        self._diagnostics.set(level, message, **values)


def main() -> None:
    main_for(EmgProcessingNode, "emg_processing_node")


if __name__ == "__main__":
    main()
