"""ik_node: markers (MarkerSet) -> ik/joint_states (sensor_msgs/JointState),
ik/marker_residuals (MarkerResiduals), ik/quality (IkQuality) and segment frames on /tf, with
biorbd inverse kinematics.

Two Python threads, optionally kept on one core (pin_threads): the executor thread
(node_runner's SingleThreadedExecutor) takes markers, only queueing each frame, and serves
diagnostics and parameters; a solver thread solves the queued frames in order and publishes.
When the solver cannot keep up (a frame waited more than max_lag), it skips to the newest frame
and counts the others (frames_skipped): never silently lost. frame_number gaps on arrival
(frames lost before reaching this node) are counted separately (frames_missing_upstream).
"""
from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node

from biosig_ros.errors import ConfigError
from biosig_ros.msg import MarkerSet
from biosig_ros.nodes.ik_outputs import IkOutputs
from biosig_ros.processing.ik_solver import (IkResult, IkSettings, IkSolver,
                                              least_squares_solver)
from biosig_ros.ros.conversions import msg_to_frame
from biosig_ros.ros.diagnostics import ERROR, OK, STALE, WARN, Diagnostics, loss_window
from biosig_ros.ros.node_context import expand_frame_prefix, node_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import input_qos
from biosig_ros.settings import doc_field, realtime_priority_field
from biosig_ros.stream_stats import StreamStats


_QUEUE_LIMIT = 1000  # frames queued for the solver before the oldest are skipped regardless
_NAME_MAP = "marker_name_map"


@dataclass
class IkNodeSettings(IkSettings):
    frame_id: str = doc_field("world", "parent frame of the segment frames on /tf and frame_id "
                              "of the outputs (the frame the markers are expressed in)")
    publish_tf: bool = doc_field(True, "publish every model segment's pose on /tf")
    tf_prefix: str = doc_field(
        "{namespace}/", "prefix of the segment names as tf child frames; {namespace} stands for "
        "the node's namespace: s1/thorax in namespace s1, thorax at the root ('' = none)")
    residual_warning: float = doc_field(
        0.05, "metres of mean marker residual above which diagnostics warn",
        range=(0.0, None), runtime=True)
    diagnostics_window: float = doc_field(
        10.0, "seconds during which a skipped, out-of-range or under-determined frame keeps "
        "diagnostics at WARN", range=(0.0, None))
    pin_threads: bool = doc_field(
        False, "keep this node's Python threads on one CPU core (see pin_cpu): fewer frames "
        "skipped on a busy machine, but check that core is not one reserved for a real-time "
        "loop")
    pin_cpu: int = doc_field(-1, "the core for pin_threads; -1 = the last core the process may "
                             "use", range=(-1, None))
    realtime_priority: int = realtime_priority_field()
    max_lag: float = doc_field(
        0.02, "seconds a frame may wait for the solver; older ones are skipped for the newest",
        range=(0.0, None), runtime=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.residual_warning > 0:
            raise ConfigError("parameter 'residual_warning' must be a positive number of metres")
        if self.pin_cpu < -1:
            raise ConfigError("parameter 'pin_cpu' must be a core number, or -1 (automatic)")
        if not self.max_lag >= 0:
            raise ConfigError("parameter 'max_lag' must be >= 0 seconds (0: always the newest)")
        if not self.diagnostics_window > 0:
            raise ConfigError("parameter 'diagnostics_window' must be a positive number of "
                              "seconds")
        if self.publish_tf and not self.frame_id:
            raise ConfigError("parameter 'frame_id' is empty: /tf needs a parent frame")


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
    """Marker frames in; joint angles, residuals, quality and segment frames out."""

    def __init__(self):
        super().__init__("ik")
        self.settings = declare_settings(self, IkNodeSettings, on_change=self._on_change)
        mapped = declare_name_map_entries(self)
        if mapped:
            self.settings = dataclasses.replace(
                self.settings, marker_name_map=[*self.settings.marker_name_map, *mapped])
        pinned = pin_python_threads(self.settings.pin_cpu) if self.settings.pin_threads else None
        apply_priorities(self, self.settings.realtime_priority)  # before the solver thread
        self.solver = IkSolver(self.settings)  # ConfigError (missing model...) ends the node
        model = self.solver.model
        self._marker_names = list(model.marker_names)
        self._dof_names = list(model.dof_names)
        if not model.buffers.leak_free:
            self.get_logger().warning(
                "this biorbd build's vectors could not be aliased: its numpy conversions, which "
                "leak about 1.5 MB per 10k calls, are used (see docs/notes.md)")
        self._outputs = IkOutputs(self, model, self.settings.frame_id, self.settings.publish_tf,
                                  expand_frame_prefix(self.settings.tf_prefix, self))
        self._diagnostics = Diagnostics(self, hardware_id=str(model.path))
        self._diagnostics.set(STALE, "waiting for markers", method=self.settings.method,
                              model=str(model.path))

        self._intake = StreamStats(clock=node_seconds(self))   # per second of the node's clock
        self._output = StreamStats(clock=node_seconds(self))
        window = self.settings.diagnostics_window
        self._losses = loss_window(self, window)    # frames not solved: skipped, missing, too few markers
        self._flags = loss_window(self, window)     # solved frames flagged: range, markers, restarts
        self._failed = loss_window(self, window)
        self._condition = threading.Condition()
        self._queue: deque[tuple[float, MarkerSet]] = deque()  # (arrival, frame) in order
        self._stopping = False
        self._skipped = 0
        self._first_frame: int | None = None
        self._failures = 0
        self._last_failure = ""
        self._flagged = {"out_of_range": 0, "underdetermined": 0, "stepped": 0}
        self._last_flags = ""
        self._insufficient_seen = 0
        self._frame_warning = ""
        self._solve_times: deque[float] = deque(maxlen=500)
        self._last_result: IkResult | None = None
        self._worker = threading.Thread(target=self._solve_loop, name="ik_solver", daemon=True)
        self._worker.start()

        self.create_subscription(MarkerSet, "markers", self._on_markers, input_qos())
        self.create_timer(1.0, self._update_diagnostics)
        outputs = "ik/joint_states, ik/marker_residuals, ik/quality" + (
            f", /tf (segments {expand_frame_prefix(self.settings.tf_prefix, self)}* under "
            f"'{self.settings.frame_id}')"
            if self.settings.publish_tf else "")
        self.get_logger().info(
            f"ready: model {model.path} ({model.nb_q} DoF, {model.nb_markers} markers, "
            f"{len(model.segment_names)} segments), method {self.settings.method}, markers in "
            f"{self.settings.marker_units}"
            f"{f', Python threads on CPU {pinned}' if pinned is not None else ''}; "
            f"markers -> {outputs}")

    def _on_change(self, updated: IkNodeSettings, changed: list[str]) -> None:
        """Runtime parameters (residual_warning, max_lag): read by the loops as they run."""
        self.settings = updated
        self.get_logger().info("parameters changed: " + ", ".join(
            f"{name}={getattr(updated, name)}" for name in changed))

    # --- intake (executor thread): only queues, never blocks on the solver --------------

    def _on_markers(self, msg: MarkerSet) -> None:
        if self._first_frame is None:
            self._first_frame = int(msg.frame_number)
        missing = self._intake.update(int(msg.frame_number), 1)
        self._losses.record(missing, "frames missing upstream")
        with self._condition:
            if len(self._queue) >= _QUEUE_LIMIT:  # only if the solver thread stalls for long
                self._queue.popleft()
                self._skip(1)
            self._queue.append((time.monotonic(), msg))
            self._condition.notify()

    def _skip(self, count: int) -> None:
        self._skipped += count
        self._losses.record(count, "frames skipped (solver behind)")

    # --- solving (worker thread) --------------------------------------------------------

    def _solve_loop(self) -> None:
        least_squares_solver()  # imported here, once the node listens (see its docstring)
        gc.collect()  # its objects join the start-up ones out of the collector's reach, as
        gc.freeze()   # node_runner does with those made before the node spins
        while True:
            with self._condition:
                while not self._queue and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                # Behind by more than max_lag: skip to the newest frame, counting the others.
                # Short backlogs (scheduling jitter) are worked off in order.
                now = time.monotonic()
                skipped = 0
                while len(self._queue) > 1 and now - self._queue[0][0] > self.settings.max_lag:
                    self._queue.popleft()
                    skipped += 1
                if skipped:
                    self._skip(skipped)
                _, msg = self._queue.popleft()
            self._solve(msg)

    def _solve(self, msg: MarkerSet) -> None:
        try:
            result = self.solver.step(msg_to_frame(msg))
        except Exception as error:  # noqa: BLE001 - a bad frame must not stop the node
            self._failures += 1
            self._failed.record(1, "frames failed to solve")
            text = f"{type(error).__name__}: {error}"
            if text != self._last_failure:
                self.get_logger().error(f"frame {msg.frame_number} could not be solved: {text}")
                self._last_failure = text
            return
        for report in self.solver.matcher.reports():
            self.get_logger().warning(report)
        insufficient = self.solver.state.frames_insufficient
        if insufficient > self._insufficient_seen:
            self._losses.record(insufficient - self._insufficient_seen,
                                "frames with too few visible markers")
            self._insufficient_seen = insufficient
        if result is None:
            return
        self._note(msg, result)
        self._outputs.publish(msg, result)
        self._solve_times.append(result.solve_time)
        self._output.update(self.solver.state.frames_solved, 1)
        self._last_result = result

    def _note(self, msg: MarkerSet, result: IkResult) -> None:
        """Log restarts; count flagged frames in the diagnostics window."""
        if result.event == "initialised":
            self.get_logger().info(
                f"tracking started at frame {result.frame_number}: mean marker residual "
                f"{result.mean_residual * 1000:.1f} mm")
        elif result.event:
            self.get_logger().warning(
                f"re-initialised at frame {result.frame_number}: {result.event_reason}")
            self._flags.record(1, f"re-initialised ({result.event_reason})")
        flags = []
        if result.out_of_range:
            self._flagged["out_of_range"] += 1
            flags.append("outside the model's ranges: "
                         + ", ".join(self._dof_names[i] for i in result.out_of_range))
        if result.underdetermined:
            self._flagged["underdetermined"] += 1
            flags.append("too few markers for " + ", ".join(result.underdetermined))
        if result.stepped:
            self._flagged["stepped"] += 1
            flags.append("stepped beyond max_pose_step/max_translation_step: "
                         + ", ".join(self._dof_names[i] for i in result.stepped))
        for flag in flags:
            self._flags.record(1, flag)
        self._last_flags = "; ".join(flags)
        incoming = msg.header.frame_id
        if incoming and incoming != self.settings.frame_id and not self._frame_warning:
            self._frame_warning = incoming
            self.get_logger().warning(
                f"markers arrive in frame '{incoming}' but parameter 'frame_id' is "
                f"'{self.settings.frame_id}': outputs use '{self.settings.frame_id}'")

    # --- diagnostics ---------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        state = self.solver.state
        intake = self._intake
        times = np.array(self._solve_times) * 1000.0
        result = self._last_result
        values = dict(
            input_rate_hz=intake.rate(), output_rate_hz=self._output.rate(),
            frames_received=intake.messages, frames_solved=state.frames_solved,
            frames_skipped=self._skipped, frames_missing_upstream=intake.missing_samples,
            dropped_frames=self._skipped + intake.missing_samples,
            frames_insufficient_markers=state.frames_insufficient,
            frames_out_of_range=self._flagged["out_of_range"],
            frames_underdetermined=self._flagged["underdetermined"],
            frames_stepped=self._flagged["stepped"],
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
            values["last_frame_flags"] = self._last_flags or "none"
            if np.isfinite(result.residuals).any():
                worst = int(np.nanargmax(result.residuals))
                values["worst_marker"] = (f"{self._marker_names[worst]} "
                                          f"{result.residuals[worst] * 1000:.1f} mm")
        level, message = self._health(result, intake.seconds_since_last())
        self._diagnostics.set(level, message, **values)

    def _health(self, result, silence):
        if silence is None:
            return STALE, "waiting for markers"
        if silence > 1.0:
            return STALE, f"no markers for {silence:.0f} s"
        failed = self._failed.message()
        if failed:
            return ERROR, f"{failed}: {self._last_failure}"
        problems = [self._losses.message()]
        flagged, _, what = self._flags.summary()
        if flagged:
            problems.append(f"{flagged} frame(s) flagged in the last "
                            f"{self._flags.window:g} s: {what}")
        problems = [text for text in problems if text]
        if result is not None and result.mean_residual > self.settings.residual_warning:
            problems.append(f"mean marker residual {result.mean_residual * 1000:.0f} mm "
                            "(mislabelled or moved marker? see ik/marker_residuals)")
        return (WARN, "; ".join(problems)) if problems else (OK, "tracking")

    def close(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()
        self._worker.join(timeout=5.0)


def declare_name_map_entries(node: Node) -> list[str]:
    """A parameter file may give marker_name_map as a YAML mapping ({incoming: model}); ROS
    flattens it into parameters 'marker_name_map.<incoming>'. Declares them (read-only) and
    returns them as 'incoming=model' entries."""
    prefix = _NAME_MAP + "."
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    entries = []
    for name in sorted(n for n in overrides if n.startswith(prefix)):
        value = node.declare_parameter(name, overrides[name].value).value
        if not isinstance(value, str):
            raise ConfigError(f"parameter '{_NAME_MAP}': {name[len(prefix):]!r} must map to a "
                              f"model marker name, got {value!r}")
        entries.append(f"{name[len(prefix):]}={value}")
    return entries


def main() -> None:
    main_for(IkNode, "ik_node")


if __name__ == "__main__":
    main()
