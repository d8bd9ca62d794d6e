"""torque_node: emg/envelope (SignalChunk) + ik/joint_states (JointState) -> torque/muscle and
torque/inverse_dynamics (JointState: effort per DoF, stamp = the pose's capture time) and
torque/quality (DiagnosticStatus per frame: its flags).

Translation only: the estimation is biosig_ros.processing.torque_estimator.TorqueEstimator.
Each pose is paired with the envelope sample nearest its stamp: it waits (at most
pairing_wait_s) for the envelope to reach its stamp, then takes the newest sample if it lies
within max_envelope_age_s, else publishes the inverse dynamics only (counted, flagged). With
quality_topic, each pose also waits (as long) for IK's quality of its frame: a discontinuity
there (re-initialisation, the replay's loop restart, a jump) restarts velocity and acceleration
instead of differentiating across it (flagged); a pose whose quality never came is flagged.
Service ~/calibrate (biosig_ros/srv/CalibrateTorque): an async callback that waits, if needed,
until `duration` seconds of paired frames are kept, fits the gains (torque_calibration) in a
worker thread on a model of its own (biorbd models are not thread-safe), then applies and saves
them on the executor. The fit takes about (channels + 1) x 0.15 ms per frame (1.6 s for 10 s at
100 Hz with 10 channels); biorbd holds the interpreter lock per call, not across calls, so the
executor keeps publishing torques meanwhile (more slowly while it runs).
"""
from __future__ import annotations

import array
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState

from biosig_ros.errors import ConfigError
from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.torque_calibration import TorqueWindow, calibrate_gains
from biosig_ros.processing.torque_estimator import (TorqueEstimator, TorqueResult,
                                                    TorqueSettings)
from biosig_ros.processing.torque_model import TorqueModel
from biosig_ros.robot.stamp_pairing import RecentByStamp
from biosig_ros.ros.diagnostics import OK, STALE, WARN, Diagnostics, LossWindow
from biosig_ros.ros.ik_quality import quality_type
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.node_setup import setup_or_destroy
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import input_qos, output_qos
from biosig_ros.settings import doc_field, realtime_priority_field
from biosig_ros.srv import CalibrateTorque


@dataclass
class TorqueNodeSettings(TorqueSettings):
    max_envelope_age_s: float = doc_field(
        0.05, "an envelope sample further than this from the pose's stamp is not used (the "
        "pose gets inverse dynamics only)", range=(0.0, None))
    quality_topic: str = doc_field(
        "ik/quality", "IkQuality of each pose: a pose IK flags as a discontinuity restarts "
        "velocity and acceleration (flagged) instead of torque spikes from differentiating "
        "across it; '' = none (a jump is then differentiated)")
    pairing_wait_s: float = doc_field(
        0.05, "seconds (wall) a pose waits for the envelope to reach its stamp",
        range=(0.0, None))
    window_s: float = doc_field(60.0, "seconds of paired frames kept for ~/calibrate",
                                range=(0.0, None))
    calibration_file: str = doc_field(
        "", "YAML ~/calibrate writes the calibrated map to when the request names none "
        "('' = not saved)", runtime=True)
    loss_window_s: float = doc_field(10.0, "/diagnostics stays WARN this long after a pose "
                                     "went without envelope", range=(0.0, None))
    realtime_priority: int = realtime_priority_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_envelope_age_s", "pairing_wait_s", "window_s", "loss_window_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"parameter '{name}' must be a number > 0")


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _stamp_text(header) -> str:
    """The frame's stamp exactly ("sec.nanosec", 9 digits): DiagnosticStatus has no header."""
    return f"{header.stamp.sec}.{header.stamp.nanosec:09d}"


class EnvelopeBuffer:
    """Recent envelope chunks; the sample nearest a time."""

    def __init__(self, seconds: float = 2.0):
        self._chunks: deque[tuple[float, float, np.ndarray]] = deque()  # t0, rate, samples
        self._seconds = seconds
        self.unit = ""
        self.names: list[str] = []

    def add(self, msg: SignalChunkMsg) -> bool:
        """Keeps the chunk; True when the channel names changed."""
        names = list(msg.channel_names)
        changed = names != self.names
        if changed:
            self._chunks.clear()
            self.names = names
        self.unit = msg.unit
        samples = np.asarray(msg.data, dtype=float).reshape(int(msg.sample_count), len(names))
        self._chunks.append((_stamp(msg.header), float(msg.sample_rate) or 1.0, samples))
        while len(self._chunks) > 1 and self.newest() - self._chunks[0][0] > self._seconds:
            self._chunks.popleft()
        return changed

    def newest(self) -> float | None:
        if not self._chunks:
            return None
        t0, rate, samples = self._chunks[-1]
        return t0 + (len(samples) - 1) / rate

    def at(self, t: float) -> tuple[float, np.ndarray] | None:
        """(stamp, values) of the sample nearest t, from the chunk covering t or the nearest."""
        for t0, rate, samples in reversed(self._chunks):
            if t >= t0 - 0.5 / rate:
                index = int(min(len(samples) - 1, max(0, round((t - t0) * rate))))
                return t0 + index / rate, samples[index]
        if self._chunks:
            t0, _, samples = self._chunks[0]
            return t0, samples[0]
        return None


class TorqueNode(Node):
    """Envelope and poses in; muscle and inverse-dynamics torques out."""

    def __init__(self):
        super().__init__("torque")
        setup_or_destroy(self, self._setup)

    def _setup(self) -> None:
        self.settings = s = declare_settings(self, TorqueNodeSettings, on_change=self._on_change)
        apply_priorities(self, s.realtime_priority)  # before the calibration worker
        self.estimator = TorqueEstimator(s)
        model = self.estimator.model
        self._dofs = list(model.dof_names)
        self._envelope = EnvelopeBuffer()
        self._pending: deque[tuple[float, JointState]] = deque()  # (arrival, pose)
        # IK's discontinuity per frame ("" = continues the previous pose), by stamp
        self._discontinuities = RecentByStamp()
        self._window: deque[TorqueResult] = deque()
        self._window_q: deque[np.ndarray] = deque()
        self._losses = LossWindow(s.loss_window_s)
        self._counts = dict(poses=0, published=0, without_envelope=0, refused=0,
                            envelope_chunks=0, without_quality=0, discontinuities=0)
        self._offsets: deque[float] = deque(maxlen=500)
        self._times: deque[float] = deque(maxlen=500)
        self._last_error = ""
        self._waiting: tuple[float, Future] | None = None  # (seconds wanted, its future)
        self._calibration_model: TorqueModel | None = None  # the worker's, loaded on first use
        self._calibration_lock = threading.Lock()  # one fit at a time on that model
        self._muscle = self.create_publisher(JointState, "torque/muscle", output_qos())
        self._inverse = self.create_publisher(JointState, "torque/inverse_dynamics",
                                              output_qos())
        self._quality = self.create_publisher(DiagnosticStatus, "torque/quality", output_qos())
        self._diagnostics = Diagnostics(self, hardware_id=str(model.path))
        self._diagnostics.set(STALE, "waiting for ik/joint_states and emg/envelope")
        self.create_service(CalibrateTorque, "~/calibrate", self._on_calibrate,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(SignalChunkMsg, "emg/envelope", self._on_envelope, input_qos())
        self.create_subscription(JointState, "ik/joint_states", self._on_pose, input_qos())
        quality = quality_type() if s.quality_topic else None
        if quality is not None:  # reliable, as IK publishes it: one lost would flag a frame;
            # as deep as the poses' queue, so that a busy node loses no quality before its pose
            self.create_subscription(quality, s.quality_topic, self._on_quality, output_qos())
        self._uses_quality = quality is not None
        self._quality_heard = False  # a publisher of quality_topic exists (checked each second)
        self.create_timer(min(0.05, s.pairing_wait_s), self._drain)
        self.create_timer(1.0, self._update_diagnostics)
        if not model.leak_free:
            self.get_logger().warning("this biorbd build's vectors could not be aliased: its "
                                      "leaking numpy conversions are used (see docs/notes.md)")
        self.get_logger().info(
            f"ready: model {model.path} ({model.nb_q} DoF, {len(model.muscle_names)} muscles), "
            f"map {s.channel_map_file}: {self.estimator.describe()}; emg/envelope + "
            "ik/joint_states -> torque/muscle, torque/inverse_dynamics")

    def _on_change(self, updated: TorqueNodeSettings, changed: list[str]) -> None:
        self.settings = updated

    # --- intake --------------------------------------------------------------------------

    def _on_envelope(self, msg: SignalChunkMsg) -> None:
        self._counts["envelope_chunks"] += 1
        if len(msg.data) != int(msg.sample_count) * len(msg.channel_names):
            self._refuse("envelope chunk whose data do not match its channels x samples")
            return
        if self._envelope.add(msg):
            for note in self.estimator.set_channels(self._envelope.names):
                self.get_logger().warning(note)
            self.get_logger().info("envelope channels: " + ", ".join(self._envelope.names))
        self._drain()

    def _on_pose(self, msg: JointState) -> None:
        self._counts["poses"] += 1
        self._pending.append((time.monotonic(), msg))
        self._drain()

    def _on_quality(self, msg) -> None:
        self._discontinuities.keep(_stamp(msg.header), (
            msg.discontinuity_reason or "discontinuity" if msg.discontinuity else ""))
        self._drain()

    def _refuse(self, text: str) -> None:
        self._counts["refused"] += 1
        self._losses.record(1, "refused inputs")
        if text != self._last_error:
            self.get_logger().error(text)
            self._last_error = text

    def _drain(self) -> None:
        """Process the poses whose envelope has come, or that waited long enough."""
        now = time.monotonic()
        while self._pending:
            arrival, pose = self._pending[0]
            t = _stamp(pose.header)
            newest = self._envelope.newest()
            waiting = newest is None or newest < t - 0.005 or (
                self._quality_heard and t not in self._discontinuities)
            if waiting and now - arrival < self.settings.pairing_wait_s:
                return
            self._pending.popleft()
            self._process(pose, t)

    def _process(self, pose: JointState, t: float) -> None:
        start = time.perf_counter()
        if list(pose.name) != self._dofs:
            self._refuse(f"ik/joint_states names {list(pose.name)[:3]}... do not match the "
                         f"model's DoFs {self._dofs[:3]}...: same model as IK?")
            return
        excitation = None
        sample = self._envelope.at(t)
        if sample is not None and abs(sample[0] - t) <= self.settings.max_envelope_age_s:
            try:
                excitation = self.estimator.normalise(sample[1], self._envelope.unit)
            except ValueError as error:
                self._refuse(str(error))
            self._offsets.append(sample[0] - t)
        if excitation is None:
            self._counts["without_envelope"] += 1
            self._losses.record(1, "poses without a recent envelope")
        velocity = pose.velocity if len(pose.velocity) == len(self._dofs) else None
        discontinuity = self._discontinuities.pop(t)
        try:
            result = self.estimator.step(t, np.asarray(pose.position, dtype=float), velocity,
                                         excitation, discontinuity or "")
        except ValueError as error:
            self._refuse(f"pose refused: {error}")
            return
        if discontinuity:
            self._counts["discontinuities"] += 1
        if discontinuity is None and self._quality_heard:
            self._counts["without_quality"] += 1
            self._losses.record(1, "poses without their ik/quality")
            result.flags.append(f"no {self.settings.quality_topic} for this pose: a "
                                "discontinuity would go unnoticed")
        self._publish(pose, result)
        if result.muscle is not None:
            self._keep(result, np.asarray(pose.position, dtype=float))
        self._times.append(time.perf_counter() - start)

    def _publish(self, pose: JointState, result: TorqueResult) -> None:
        # The quality first: a consumer acting on the muscle torque (assist_node) waits for the
        # frame's quality, and uses the torque on arrival when its quality is already there.
        offset = self._offsets[-1] if self._offsets else float("nan")
        self._quality.publish(DiagnosticStatus(
            level=WARN if result.flags else OK, name="torque",
            message="; ".join(result.flags) or "ok", hardware_id=_stamp_text(pose.header),
            values=[KeyValue(key="envelope_offset_ms", value=f"{offset * 1000:.1f}"),
                    KeyValue(key="max_activation",
                             value=f"{float(result.activations.max(initial=0.0)):.3f}")]))
        position = array.array("d", pose.position)
        inverse = JointState(header=pose.header, name=self._dofs, position=position,
                             velocity=array.array("d", result.qdot),
                             effort=array.array("d", result.inverse_dynamics))
        self._inverse.publish(inverse)
        if result.muscle is not None:
            self._muscle.publish(JointState(
                header=pose.header, name=self._dofs, position=position,
                velocity=array.array("d", result.muscle_qdot),
                effort=array.array("d", result.muscle)))
            self._counts["published"] += 1

    def _keep(self, result: TorqueResult, q: np.ndarray) -> None:
        self._window.append(result)
        self._window_q.append(q)
        while self._window and result.stamp - self._window[0].stamp > self.settings.window_s:
            self._window.popleft()
            self._window_q.popleft()
        waiting = self._waiting
        if waiting and result.stamp - self._window[0].stamp >= waiting[0] and \
                not waiting[1].done():
            waiting[1].set_result(True)

    # --- calibration ---------------------------------------------------------------------

    async def _on_calibrate(self, request, response):
        response.success = False
        duration = float(request.duration)
        if not 0 < duration <= self.settings.window_s:
            response.message = (f"duration must be > 0 and <= window_s "
                                f"({self.settings.window_s:g} s), got {duration:g}")
            return response
        kept = self._window[-1].stamp - self._window[0].stamp if self._window else 0.0
        if kept < duration:
            finished = Future()
            self._waiting = (duration, finished)
            deadline = self.create_timer(duration + 10.0, lambda: finished.done()
                                         or finished.set_result(False))
            self.get_logger().info(f"calibration: waiting for {duration:g} s of paired frames")
            try:
                complete = await finished
            finally:
                self.destroy_timer(deadline)
                self._waiting = None
            if not complete:
                response.message = "not enough paired frames came (envelope and poses?)"
                return response
        newest = self._window[-1].stamp
        chosen = [(r, q) for r, q in zip(self._window, self._window_q)
                  if newest - r.stamp <= duration]
        window = TorqueWindow(
            q=np.array([q for _, q in chosen]),
            muscle_qdot=np.array([r.muscle_qdot for r, _ in chosen]),
            channel_activations=np.array([r.channel_activations for r, _ in chosen]),
            inverse_dynamics=np.array([r.inverse_dynamics for r, _ in chosen]),
            muscle=np.array([r.muscle for r, _ in chosen]))
        est = self.estimator
        self.get_logger().info(f"calibration: fitting {len(chosen)} frames in a worker thread "
                               "(torques keep flowing)")
        outcome = await self._fit_in_worker(window, [g.copy() for g in est.groups],
                                            est.force_scale.copy())
        if isinstance(outcome, str):
            response.message = f"calibration failed: {outcome}"
            return response
        fit = outcome
        if len(fit.gains) != len(est.gains):
            response.message = "calibration failed: the envelope's channels changed during the fit"
            return response
        est.set_gains(fit.gains, fit.force_scale)
        est.channel_map.notes = fit.notes()
        path_text = request.output_file or self.settings.calibration_file
        note = "not saved (no output_file and no calibration_file parameter)"
        if path_text:
            try:
                note = f"saved to {est.channel_map.save(resolve_data_path(path_text))}"
            except OSError as error:
                note = f"NOT saved to {path_text}: {error}"
        response.success = True
        response.channel_names = list(est.channel_names)
        response.gains = [float(g) for g in fit.gains]
        response.rmse_before, response.rmse_after = fit.rmse_before, fit.rmse_after
        response.r2_before, response.r2_after = fit.r2_before, fit.r2_after
        scaled = "" if not self.settings.force_scale_change else (
            ", force scales " + ", ".join(f"{m}={v:.2f}" for m, v in
                                          zip(est.model.muscle_names, fit.force_scale)
                                          if v != 1.0))
        response.message = (f"gains{scaled} applied from {fit.frames} frames on "
                            f"{', '.join(fit.dofs)}: RMSE {fit.rmse_before:.3g} -> "
                            f"{fit.rmse_after:.3g} N.m, R^2 {fit.r2_before:.3f} -> "
                            f"{fit.r2_after:.3f}; {note}")
        self.get_logger().info("calibration: " + response.message)
        return response

    async def _fit_in_worker(self, window: TorqueWindow, groups, force_scale):
        """calibrate_gains in a worker thread: the CalibrationResult, or the error's text."""
        done = Future()
        s = self.settings

        def fit_on_own_model():
            if self._calibration_model is None:  # its own: the estimator's is in use
                self._calibration_model = TorqueModel(self.estimator.model.path)
            return calibrate_gains(self._calibration_model, groups, window, s.calibration_dofs,
                                   (s.gain_min, s.gain_max), s.force_scale_change, force_scale,
                                   s.calibration_smoothing_hz, s.frame_rate)

        def fit():
            try:
                with self._calibration_lock:
                    fitted = fit_on_own_model()
                done.set_result(fitted)
            except Exception as error:  # noqa: BLE001 - answered, never a dead service
                done.set_result(str(error) or type(error).__name__)

        threading.Thread(target=fit, name="torque-calibration", daemon=True).start()
        return await done

    # --- diagnostics ---------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        # A source without IK's quality (another IK): poses do not wait for it, unflagged.
        self._quality_heard = self._uses_quality and bool(
            self.count_publishers(self.settings.quality_topic))
        c = self._counts
        times = np.array(self._times) * 1000.0 if self._times else np.zeros(1)
        offsets = np.array(self._offsets) * 1000.0 if self._offsets else np.zeros(1)
        values = dict(c, frames_kept=len(self._window),
                      step_ms_median=float(np.median(times)),
                      envelope_offset_ms_median=float(np.median(offsets)),
                      gains=", ".join(f"{n}={g:.3g}" for n, g in
                                      zip(self.estimator.channel_names, self.estimator.gains)),
                      unmapped_muscles=", ".join(self.estimator.unmapped_muscles) or "none")
        if not c["poses"]:
            level, message = STALE, "waiting for ik/joint_states"
        elif not c["envelope_chunks"]:
            level, message = WARN, "no emg/envelope: inverse dynamics only"
        else:
            losses = self._losses.message()
            level, message = (WARN, losses) if losses else (OK, "estimating")
        self._diagnostics.set(level, message, **values)


def main() -> None:
    main_for(TorqueNode, "torque_node")


if __name__ == "__main__":
    main()
