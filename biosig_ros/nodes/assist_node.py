"""assist_node: EMG envelope (+ IK pose) -> exoskeleton torque command, with the safety checks
a topic-fed ros2_control forward_command_controller does not have.

    emg/envelope (SignalChunk)   ->  assist  ->  exo/commands (std_msgs/Float64MultiArray, N.m)
    ik/joint_states (JointState) ->          ->  assist/state (AssistState), /diagnostics
    ik/quality (IkQuality)       ->          <-  services ~/enable (SetBool), ~/stop, ~/reset
                                                 (std_srvs/Trigger)
With source muscle_torque, torque/muscle (JointState efforts) and torque/quality
(DiagnosticStatus per frame) replace emg/envelope.

Every decision (which input is fresh and usable, faults, enable / disable / stop, when a
command goes out, dt, the ramps, the watchdog, the shutdown ramp) is made by
robot.assist_controller.AssistController with the node's clock; this node only turns topics,
services and timers into its calls and publishes what it returns. It also keeps the last
command in a memory file (robot.command_memory), so that a process restarted after a crash
ramps down from what the controller still holds.
"""
from __future__ import annotations

import array
import os
import time
from pathlib import Path
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import SetBool, Trigger

from biosig_ros.errors import ConfigError
from biosig_ros.msg import AssistState, SignalChunk
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.mvc import MvcCalibration
from biosig_ros.paths import resolve_data_path
from biosig_ros.robot.assist_controller import ERROR, WARN, AssistController, Command
from biosig_ros.robot.assist_law import AssistLaw
from biosig_ros.robot.assist_settings import AssistSettings, mvc_table
from biosig_ros.robot.command_memory import CommandMemory, default_memory_path
from biosig_ros.robot.pose_support import PoseSupport
from biosig_ros.ros import diagnostics
from biosig_ros.ros.diagnostics import Diagnostics
from biosig_ros.ros.ik_quality import quality_type
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import control_input_qos, output_qos

LEVELS = {"ok": diagnostics.OK, WARN: diagnostics.WARN, ERROR: diagnostics.ERROR}
FINAL_ACK_S = 4.0  # longest wait at shutdown for subscribers to acknowledge the final 0


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class AssistNode(Node):
    def __init__(self):
        super().__init__("assist")
        self.settings = s = declare_settings(self, AssistSettings)
        apply_priorities(self, s.realtime_priority)
        n = len(s.joints)
        pose = self._pose_support() if s.uses_pose else None
        quality = quality_type() if s.quality_topic and pose is not None else None
        self._memory, resumed = self._command_memory()
        self._controller = AssistController(
            s, AssistLaw(s.joint_laws(), self._mvc(), s.max_activation), pose, self._now,
            quality=quality is not None, initial_command=resumed, on_fault=self._on_fault,
            torque_quality=bool(s.torque_quality_topic))
        self._times: deque[float] = deque(maxlen=1000)

        self._command = Float64MultiArray()
        self._command.layout.dim = [MultiArrayDimension(label="joints", size=n, stride=n)]
        self._command_publisher = self.create_publisher(
            Float64MultiArray, s.command_topic, output_qos())
        self._state_publisher = (self.create_publisher(AssistState, s.state_topic, output_qos())
                                 if s.state_topic else None)
        self._diagnostics = Diagnostics(self, hardware_id="assist")
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/reset", self._on_reset)
        # Quality first: when a frame's quality and pose are both waiting, the executor takes
        # the subscriptions in the order they were created.
        if quality is not None:
            self.create_subscription(quality, s.quality_topic, self._on_quality,
                                     control_input_qos(s.max_input_age))
        self._subscribe_source()
        if pose is not None:
            self.create_subscription(JointState, s.joint_states_topic, self._on_joint_states,
                                     control_input_qos(s.max_input_age))
        self.create_timer(self._controller.period, self._on_timer)
        self.create_timer(1.0, self._update_diagnostics)
        self._update_diagnostics()
        budget = self._controller.worst_shutdown_budget()
        if budget > 8.0:
            self.get_logger().warning(
                f"a shutdown ramps the command to 0 for up to {budget:.1f} s (torque_limits / "
                "rate_limits): launchers kill a node that takes over 10 s to stop")
        self.get_logger().info(
            f"ready: joints {', '.join(s.joints)}; {self._source_topics()}"
            f"{' + ' + s.joint_states_topic if pose is not None else ''}"
            f"{' + ' + s.quality_topic if quality is not None else ''} -> {s.command_topic} "
            f"(N.m, >= {s.rate:g} Hz); DISABLED until ~/enable")

    def _subscribe_source(self) -> None:
        s, qos = self.settings, control_input_qos(self.settings.max_input_age)
        if s.source == "emg_law":
            self.create_subscription(SignalChunk, s.envelope_topic, self._on_envelope, qos)
            return
        if s.torque_quality_topic:  # first, like ik/quality: a frame's quality is taken first
            self.create_subscription(DiagnosticStatus, s.torque_quality_topic,
                                     self._on_torque_quality, qos)
        self.create_subscription(JointState, s.muscle_torque_topic, self._on_muscle_torque, qos)

    def _source_topics(self) -> str:
        s = self.settings
        if s.source == "emg_law":
            return s.envelope_topic
        return s.muscle_torque_topic + (f" + {s.torque_quality_topic}"
                                        if s.torque_quality_topic else " (no quality check)")

    def _now(self) -> float:
        """The node's clock (system time, or the simulation's with use_sim_time): the time
        base of the header stamps the controller compares with it."""
        return self.get_clock().now().nanoseconds * 1e-9

    # --- start-up -------------------------------------------------------------------------

    def _mvc(self) -> dict[str, float]:
        s = self.settings
        from_file: dict[str, float] = {}
        if s.mvc_file:
            path = resolve_data_path(s.mvc_file)
            if not path.is_file():
                raise ConfigError(f"mvc_file: no such file: {path}")
            calibration = MvcCalibration.load(path)
            from_file = dict(zip(calibration.channel_names, calibration.mvc))
        return mvc_table(s, from_file)

    def _pose_support(self) -> PoseSupport:
        s = self.settings
        model = load_model(s.model_path)
        for name in ("gravity_dofs", "watch_dofs"):
            unknown = [d for d in getattr(s, name) if d and d not in model.dof_names]
            if unknown:
                raise ConfigError(f"parameter '{name}': {', '.join(unknown)} not DoF(s) of "
                                  f"{model.path.name} ({', '.join(model.dof_names)})")
        pose = PoseSupport(model, s.gravity_dofs, s.gravity_signs, s.support_fraction,
                           s.watch_dofs, s.range_margin, s.max_pose_step)
        if pose.uses_gravity and not pose.leak_free:
            self.get_logger().warning("gravity support leaks biorbd memory on every joint state "
                                      "(about 165 MB an hour at 100 Hz): this build lacks "
                                      "biosig_ros.processing.ik_biorbd")
        return pose

    def _command_memory(self) -> tuple[CommandMemory | None, list[float] | None]:
        """The memory file, and the command a crashed predecessor left (None when nothing to
        resume: none, zero, untrusted, or older than command_memory_max_age)."""
        s = self.settings
        if not s.command_memory:
            return None, None
        path = (default_memory_path(os.environ.get("ROS_DOMAIN_ID", "0"),
                                    self.get_fully_qualified_name(), s.command_topic)
                if s.command_memory == "auto" else Path(s.command_memory).expanduser())
        try:
            memory = CommandMemory(path, len(s.joints))
        except OSError as error:
            raise ConfigError(f"command_memory: cannot use {path}: {error}") from error
        left = memory.recall()
        if left is None or not any(left[0]):
            return memory, None
        values, written = left
        age = self._now() - written
        text = ", ".join(f"{v:.3f}" for v in values)
        if not 0 <= age <= s.command_memory_max_age:
            self.get_logger().warning(
                f"a previous assist process left the command [{text}] N.m {age:.0f} s ago "
                f"without ramping it down (crash?): not resumed (command_memory_max_age "
                f"{s.command_memory_max_age:g} s); the controller may still hold it")
            return memory, None
        self.get_logger().warning(
            f"a previous assist process left the command [{text}] N.m {age:.1f} s ago without "
            "ramping it down (crash?): ramping it to 0 from there, DISABLED")
        return memory, values

    # --- inputs (executor thread) ---------------------------------------------------------

    def _on_envelope(self, msg: SignalChunk) -> None:
        start = time.perf_counter()
        self._send(self._controller.on_envelope(
            seconds(msg.header.stamp), int(msg.first_sample_index), int(msg.sample_count),
            msg.sample_rate, msg.channel_names, msg.unit,
            np.frombuffer(msg.data, dtype=np.float64)))
        self._times.append(time.perf_counter() - start)

    def _on_muscle_torque(self, msg: JointState) -> None:
        start = time.perf_counter()
        self._send(self._controller.on_muscle_torque(seconds(msg.header.stamp), msg.name,
                                                     msg.effort))
        self._times.append(time.perf_counter() - start)

    def _on_torque_quality(self, msg: DiagnosticStatus) -> None:
        # torque_node puts the frame's stamp in hardware_id, "sec.nanosec": converted as a
        # header stamp is, so that it equals the muscle torque's to the nanosecond.
        sec, _, nanosec = msg.hardware_id.partition(".")
        try:
            stamp = int(sec) + int(nanosec.ljust(9, "0")[:9]) * 1e-9
        except ValueError:
            stamp = float("nan")  # never pairs: its frame goes stale and faults
        problem = "" if msg.level == DiagnosticStatus.OK else (msg.message or "flagged")
        self._send(self._controller.on_torque_quality(stamp, problem))

    def _on_joint_states(self, msg: JointState) -> None:
        self._send(self._controller.on_joint_states(seconds(msg.header.stamp), msg.name,
                                                    msg.position))

    def _on_quality(self, msg) -> None:
        self._send(self._controller.on_quality(seconds(msg.header.stamp), msg))

    def _on_timer(self) -> None:
        if self._controller.holding and self._command_publisher.get_subscription_count():
            self._controller.heard()
        self._send(self._controller.on_timer())

    def _on_fault(self, reason: str) -> None:
        self.get_logger().error(f"FAULT: {reason}: command ramps to 0; call ~/enable to re-arm")
        self._update_diagnostics()

    # --- output ---------------------------------------------------------------------------

    def _send(self, command: Command | None) -> None:
        if command is None:
            return
        # array('d') is rclpy's fast path for float64[] (a numpy array is checked per element).
        self._command.data = array.array("d", command.values)
        self._command_publisher.publish(self._command)
        if self._memory is not None:
            self._memory.store(command.values, self._now())
        if self._state_publisher is not None:
            self._publish_state(command)

    def _publish_state(self, command: Command) -> None:
        state = AssistState()
        state.header.stamp.sec = int(command.stamp // 1)
        state.header.stamp.nanosec = min(int(round(command.stamp % 1 * 1e9)), 999_999_999)
        state.trigger = command.trigger
        state.state = command.state
        state.reason = command.reason
        state.joint_names = self.settings.joints
        state.command = array.array("d", command.values)
        state.target = array.array("d", command.target)
        state.emg_torque = array.array("d", command.emg)
        state.gravity_torque = array.array("d", command.gravity)
        state.agonist_activation = array.array("d", command.agonist)
        state.antagonist_activation = array.array("d", command.antagonist)
        state.envelope_index = command.envelope_index
        self._state_publisher.publish(state)

    # --- services -------------------------------------------------------------------------

    def _on_enable(self, request, response):
        ok, message = self._controller.enable(request.data)
        return self._answer("~/enable", ok, message, response)

    def _on_stop(self, request, response):
        ok, message = self._controller.stop()
        return self._answer("~/stop", ok, message, response)

    def _on_reset(self, request, response):
        ok, message = self._controller.reset()
        return self._answer("~/reset", ok, message, response)

    def _answer(self, service: str, ok: bool, message: str, response):
        # rclpy refuses two severities from one call site: two calls.
        if ok:
            self.get_logger().info(f"{service}: {message}")
        else:
            self.get_logger().warning(f"{service}: {message}")
        response.success, response.message = ok, message
        self._update_diagnostics()
        return response

    # --- diagnostics ----------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        level, message, values = self._controller.status()
        times = np.array(self._times) * 1e6 if self._times else np.zeros(1)
        values["envelope_callback_p50_us"] = float(np.percentile(times, 50))
        self._diagnostics.set(LEVELS[level], message, **values)

    def _final_command_acknowledged(self) -> float | None:
        """Seconds until every reliable subscriber acknowledged what was published (None:
        not within FINAL_ACK_S). A subscriber in another process acknowledges when the
        writer's next heartbeat asks (Fast DDS: within its 3 s period)."""
        start = time.monotonic()
        if not self._command_publisher.wait_for_all_acked(Duration(seconds=FINAL_ACK_S)):
            return None
        return time.monotonic() - start

    def close(self) -> None:
        """On shutdown: ramp the command to 0 at the rate limit, then publish 0 last.

        The forward command controller would otherwise hold the last command for as long as
        it stays active. The ramp takes |command| / rate_limit (at most torque_limit /
        rate_limit); a process starved of CPU takes longer, up to the controller's
        shutdown_give_up(): then the node stops without the step, and the memory file lets a
        restarted node finish the ramp."""
        controller = self._controller
        budget = controller.shutdown_budget()
        deadline = time.monotonic() + controller.shutdown_give_up()
        while not controller.at_zero() and time.monotonic() < deadline:
            time.sleep(controller.period)
            self._send(controller.shutdown_step())
        if controller.at_zero():
            self._send(controller.shutdown_step())
            # The process exits next: a reliable sample not yet acknowledged would be lost with
            # it, and the controller would hold the previous, non-zero command.
            acked = self._final_command_acknowledged()
            self.get_logger().info(f"stopped: command 0 published (ramp budget {budget:.2f} s)"
                                   + ("" if acked is None else f", acknowledged in {acked:.2f} s"))
            if acked is None:
                self.get_logger().warning(
                    f"the final command 0 was not acknowledged within {FINAL_ACK_S:g} s by "
                    "every subscriber: a controller may hold the previous command")
        else:
            self.get_logger().error(
                f"stopped with the command at {controller.limiter.command} N.m: the ramp to 0 "
                "did not finish in time (CPU starved?); the controller holds that value")
        if self._memory is not None:
            self._memory.close()


def main() -> None:
    # A robot acts on it: rclpy's standard executor (ros/executors.py).
    main_for(AssistNode, "assist_node", events_by_default=False)


if __name__ == "__main__":
    main()
