"""ik_node: /markers (MarkerSet) -> /ik/joint_states (sensor_msgs/JointState) and
/ik/marker_residuals (MarkerResiduals), with biorbd inverse kinematics.

Two Python threads, both kept on one core (pin_python_threads): the executor thread
(node_runner's SingleThreadedExecutor) takes /markers, only queueing each frame, and serves
diagnostics and parameters; a solver thread solves the queued frames in order and publishes. When the solver cannot keep up (a frame waited more than max_lag),
it skips to the newest frame and counts the others (frames_skipped): never silently lost.
frame_number gaps on arrival (frames lost before reaching this node) are counted separately
(frames_missing_upstream).
"""
from __future__ import annotations

import array
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState

from biosig_ros.errors import ConfigError
from biosig_ros.msg import MarkerResiduals, MarkerSet
from biosig_ros.processing.ik_solver import IkResult, IkSettings, IkSolver
from biosig_ros.ros.conversions import msg_to_frame
from biosig_ros.ros.diagnostics import ERROR, OK, STALE, WARN, Diagnostics
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import input_qos, output_qos
from biosig_ros.stream_stats import StreamStats


_QUEUE_LIMIT = 1000  # frames queued for the solver before the oldest are skipped regardless


@dataclass
class IkNodeSettings(IkSettings):
    residual_warning: float = field(default=0.05, metadata={
        "doc": "metres of mean marker residual above which diagnostics warn"})
    pin_threads: bool = field(default=True, metadata={
        "doc": "keep this node's Python threads on one CPU core (see pin_cpu)"})
    pin_cpu: int = field(default=-1, metadata={
        "doc": "the core for pin_threads; -1 = the last core the process may use"})
    max_lag: float = field(default=0.02, metadata={
        "doc": "seconds a frame may wait for the solver; older ones are skipped for the newest"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.residual_warning > 0:
            raise ConfigError("parameter 'residual_warning' must be a positive number of metres")
        if self.pin_cpu < -1:
            raise ConfigError("parameter 'pin_cpu' must be a core number, or -1 (automatic)")
        if not self.max_lag >= 0:
            raise ConfigError("parameter 'max_lag' must be >= 0 seconds (0: always the newest)")


def pin_python_threads(cpu: int) -> int | None:
    """Keep the calling thread, and the threads it starts from now on, on one core.

    biorbd holds the interpreter lock while it solves; on two free cores the executor's threads
    and the solver thread then fight over the lock (measured: ik_node answered 161 of 300
    frames at 100 Hz, at 73 % CPU). On one core they take turns (299 of 300, 24 % CPU).
    Only threads started after the call move: the DDS threads, which do not need the lock,
    keep every core. Returns the core, or None where affinity is not available.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if cpu == -1:
        cpu = allowed[-1]
    elif cpu not in allowed:
        raise ConfigError(f"parameter 'pin_cpu': core {cpu} is not available to this process "
                          f"(available: {', '.join(map(str, allowed))})")
    os.sched_setaffinity(0, {cpu})  # pid 0: the calling thread (Linux)
    return cpu


class IkNode(Node):
    """Marker frames in, joint angles and per-marker residuals out."""

    def __init__(self):
        super().__init__("ik")
        self.settings = declare_settings(self, IkNodeSettings)
        pinned = pin_python_threads(self.settings.pin_cpu) if self.settings.pin_threads else None
        self.solver = IkSolver(self.settings)  # ConfigError (missing model...) ends the node
        model = self.solver.model
        self._dof_names = list(model.dof_names)
        self._marker_names = list(model.marker_names)
        self._joint_publisher = self.create_publisher(JointState, "ik/joint_states", output_qos())
        self._residual_publisher = self.create_publisher(
            MarkerResiduals, "ik/marker_residuals", output_qos())
        self._diagnostics = Diagnostics(self, hardware_id=str(model.path))
        self._diagnostics.set(STALE, "waiting for /markers", method=self.settings.method,
                              model=str(model.path))

        self._intake = StreamStats()
        self._output = StreamStats()
        self._condition = threading.Condition()
        self._queue: deque[tuple[float, MarkerSet]] = deque()  # (arrival, frame) in order
        self._stopping = False
        self._skipped = 0
        self._first_frame: int | None = None
        self._failures = 0
        self._last_failure = ""
        self._solve_times: deque[float] = deque(maxlen=500)
        self._last_result: IkResult | None = None
        self._previous_counts = (0, 0, 0, 0, 0)
        self._worker = threading.Thread(target=self._solve_loop, name="ik_solver", daemon=True)
        self._worker.start()

        self.create_subscription(MarkerSet, "markers", self._on_markers, input_qos())
        self.create_timer(1.0, self._update_diagnostics)
        self.get_logger().info(
            f"ready: model {model.path} ({model.nb_q} DoF, {model.nb_markers} markers), method "
            f"{self.settings.method}, markers in {self.settings.marker_units}"
            f"{f', Python threads on CPU {pinned}' if pinned is not None else ''}; "
            "/markers -> /ik/joint_states, /ik/marker_residuals")

    # --- intake (executor thread): only queues, never blocks on the solver --------------

    def _on_markers(self, msg: MarkerSet) -> None:
        if self._first_frame is None:
            self._first_frame = int(msg.frame_number)
        self._intake.update(int(msg.frame_number), 1)
        with self._condition:
            if len(self._queue) >= _QUEUE_LIMIT:  # only if the solver thread stalls for long
                self._queue.popleft()
                self._skipped += 1
            self._queue.append((time.monotonic(), msg))
            self._condition.notify()

    # --- solving (worker thread) --------------------------------------------------------

    def _solve_loop(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                # Behind by more than max_lag: skip to the newest frame, counting the others.
                # Short backlogs (scheduling jitter) are worked off in order.
                now = time.monotonic()
                while len(self._queue) > 1 and now - self._queue[0][0] > self.settings.max_lag:
                    self._queue.popleft()
                    self._skipped += 1
                _, msg = self._queue.popleft()
            self._solve(msg)

    def _solve(self, msg: MarkerSet) -> None:
        try:
            result = self.solver.step(msg_to_frame(msg))
        except Exception as error:  # noqa: BLE001 - a bad frame must not stop the node
            self._failures += 1
            text = f"{type(error).__name__}: {error}"
            if text != self._last_failure:
                self.get_logger().error(f"frame {msg.frame_number} could not be solved: {text}")
                self._last_failure = text
            return
        for report in self.solver.matcher.reports():
            self.get_logger().warning(report)
        if result is None:
            return
        if result.event == "initialised":
            self.get_logger().info(
                f"tracking started at frame {result.frame_number}: mean marker residual "
                f"{result.mean_residual * 1000:.1f} mm")
        elif result.event:
            self.get_logger().warning(
                f"re-initialised at frame {result.frame_number}: "
                f"{self.solver.state.last_event_reason}")
        self._publish(msg, result)
        self._solve_times.append(result.solve_time)
        self._output.update(self.solver.state.frames_solved, 1)
        self._last_result = result

    def _publish(self, msg: MarkerSet, result: IkResult) -> None:
        joints = JointState()
        joints.header.stamp = msg.header.stamp
        joints.header.frame_id = msg.header.frame_id
        joints.name = self._dof_names
        joints.position = array.array("d", result.q)
        joints.velocity = array.array("d", result.qdot)
        self._joint_publisher.publish(joints)
        residuals = MarkerResiduals()
        residuals.header.stamp = msg.header.stamp
        residuals.header.frame_id = msg.header.frame_id
        residuals.frame_number = msg.frame_number
        residuals.marker_names = self._marker_names
        residuals.residuals = array.array("d", result.residuals)
        residuals.mean_residual = float(result.mean_residual)
        self._residual_publisher.publish(residuals)

    # --- diagnostics ---------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        state = self.solver.state
        intake = self._intake
        counts = (self._skipped, intake.missing_samples, state.frames_insufficient,
                  state.reinitialisations, self._failures)
        new = [now - before for now, before in zip(counts, self._previous_counts)]
        self._previous_counts = counts
        times = np.array(self._solve_times) * 1000.0
        result = self._last_result
        values = dict(
            input_rate_hz=intake.rate(), output_rate_hz=self._output.rate(),
            frames_received=intake.messages, frames_solved=state.frames_solved,
            frames_skipped=self._skipped, frames_missing_upstream=intake.missing_samples,
            dropped_frames=self._skipped + intake.missing_samples,
            frames_insufficient_markers=state.frames_insufficient,
            reinitialisations=state.reinitialisations, solve_failures=self._failures,
            solve_time_ms_median=float(np.median(times)) if len(times) else 0.0,
            solve_time_ms_p99=float(np.percentile(times, 99)) if len(times) else 0.0,
        )
        if intake.expected_index is not None:
            values["first_frame_received"] = self._first_frame
            values["last_frame_received"] = intake.expected_index - 1
        if result is not None:
            values["last_frame_solved"] = result.frame_number
            values["mean_residual_mm"] = result.mean_residual * 1000.0
            if np.isfinite(result.residuals).any():
                worst = int(np.nanargmax(result.residuals))
                values["worst_marker"] = (f"{self._marker_names[worst]} "
                                          f"{result.residuals[worst] * 1000:.1f} mm")
        level, message = self._health(new, result, intake.seconds_since_last())
        self._diagnostics.set(level, message, **values)

    def _health(self, new, result, silence):
        skipped, missing, insufficient, reinitialised, failures = new
        if silence is None:
            return STALE, "waiting for /markers"
        if silence > 1.0:
            return STALE, f"no /markers for {silence:.0f} s"
        problems = []
        if failures:
            return ERROR, f"{failures} frame(s) failed to solve: {self._last_failure}"
        if insufficient:
            problems.append(f"{insufficient} frame(s) with too few visible markers")
        if skipped:
            problems.append(f"solver behind: skipped {skipped} frame(s)")
        if missing:
            problems.append(f"{missing} frame(s) missing upstream")
        if reinitialised:
            problems.append(f"re-initialised: {self.solver.state.last_event_reason}")
        if result is not None and result.mean_residual > self.settings.residual_warning:
            problems.append(f"mean marker residual {result.mean_residual * 1000:.0f} mm "
                            "(mislabelled or moved marker? see /ik/marker_residuals)")
        return (WARN, "; ".join(problems)) if problems else (OK, "tracking")

    def close(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()
        self._worker.join(timeout=5.0)


def main() -> None:
    main_for(IkNode, "ik_node")


if __name__ == "__main__":
    main()
