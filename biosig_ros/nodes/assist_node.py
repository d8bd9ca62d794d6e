"""assist_node: EMG envelope (+ IK pose) -> exoskeleton torque command, with the safety checks
a topic-fed ros2_control forward_command_controller does not have.

    emg/envelope (SignalChunk)   ->  assist  ->  exo/commands (std_msgs/Float64MultiArray, N.m)
    ik/joint_states (JointState) ->          ->  assist/state (AssistState), /diagnostics
                                             <-  service ~/enable (std_srvs/SetBool)

Per joint: target = gain x deadband(agonist - antagonist activation) + support_fraction x
gravity torque of the current pose; the command follows the target within the torque limits
and the rate limit. It starts disabled (command 0). Any stale input, gap in the envelope's
sample index, non-finite value, pose jump (IK re-initialisation) or out-of-range pose latches a
fault: the command ramps to 0 at the rate limit and /diagnostics says ERROR with the reason;
only a fresh ~/enable call (with healthy inputs) re-arms it. The forward command controller
keeps the last command forever and drops a message of the wrong length silently, so the
command is published at least at `rate` Hz, always with one value per joint.
"""
from __future__ import annotations

import array
import time
from collections import deque

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import SetBool

from biosig_ros.errors import ConfigError
from biosig_ros.msg import AssistState, SignalChunk
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.mvc import MvcCalibration
from biosig_ros.paths import resolve_data_path
from biosig_ros.robot.assist_law import AssistLaw, InputFault
from biosig_ros.robot.assist_settings import AssistSettings, mvc_table
from biosig_ros.robot.limiter import TorqueLimiter
from biosig_ros.robot.pose_support import PoseSupport
from biosig_ros.robot.safety import ENABLED, FAULT, SafetyState, Watchdog
from biosig_ros.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from biosig_ros.ros.ik_quality import quality_problem, quality_type
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import input_qos, output_qos

ENVELOPE, POSE = "envelope", "joint states"


class AssistNode(Node):
    def __init__(self):
        super().__init__("assist")
        self.settings = s = declare_settings(self, AssistSettings)
        n = len(s.joints)
        self._law = AssistLaw(s.joint_laws(), self._mvc(), s.max_activation)
        self._pose = self._pose_support() if s.uses_pose else None
        self._limiter = TorqueLimiter(s.torque_limits, s.rate_limits, max_dt=2.0 / s.rate)
        self._safety = SafetyState()
        timeouts = {ENVELOPE: s.envelope_timeout}
        if self._pose is not None:
            timeouts[POSE] = s.pose_timeout
        self._watchdog = Watchdog(timeouts)
        self._problems = {name: f"no {name} received yet" for name in timeouts}
        self._zero = [0.0] * n
        self._emg = self._gravity = self._target = self._zero  # N.m per joint
        self._expected_index: int | None = None
        self._envelope_index = -1
        self._gaps = self._published = 0
        self._period = 1.0 / s.rate
        self._last_publish = time.monotonic()
        self._times: deque[float] = deque(maxlen=1000)

        self._command = Float64MultiArray()
        self._command.layout.dim = [MultiArrayDimension(label="joints", size=n, stride=n)]
        self._command_publisher = self.create_publisher(
            Float64MultiArray, s.command_topic, output_qos())
        self._state_publisher = (self.create_publisher(AssistState, s.state_topic, output_qos())
                                 if s.state_topic else None)
        self._diagnostics = Diagnostics(self, hardware_id="assist")
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_subscription(SignalChunk, s.envelope_topic, self._on_envelope, input_qos())
        if self._pose is not None:
            self.create_subscription(JointState, s.joint_states_topic, self._on_joint_states,
                                     input_qos())
        quality = quality_type() if s.quality_topic else None
        if quality is not None:
            self.create_subscription(quality, s.quality_topic, self._on_quality, input_qos())
        self.create_timer(self._period, self._on_timer)
        self.create_timer(1.0, self._update_diagnostics)
        self._update_diagnostics()
        self.get_logger().info(
            f"ready: joints {', '.join(s.joints)}; {s.envelope_topic}"
            f"{' + ' + s.joint_states_topic if self._pose is not None else ''}"
            f"{' + ' + s.quality_topic if quality is not None else ''} -> {s.command_topic} "
            f"(N.m, >= {s.rate:g} Hz); DISABLED until ~/enable")

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

    # --- inputs (executor thread) ---------------------------------------------------------

    def _on_envelope(self, msg: SignalChunk) -> None:
        start = time.perf_counter()
        now = time.monotonic()
        self._watchdog.feed(ENVELOPE, now)
        first, count = int(msg.first_sample_index), int(msg.sample_count)
        expected, self._expected_index = self._expected_index, first + count
        try:
            if expected is not None and first != expected:
                self._gaps += 1
                raise InputFault(f"gap in the envelope: sample index {first}, expected "
                                 f"{expected}" + (" (stream went back)" if first < expected
                                                  else f" ({first - expected} missing)"))
            if count < 1 or len(msg.data) != count * len(msg.channel_names):
                raise InputFault(f"malformed envelope chunk: {len(msg.data)} values for "
                                 f"{count} samples x {len(msg.channel_names)} channels")
            self._law.bind(msg.channel_names, msg.unit)
            self._emg = self._law.torque(np.frombuffer(msg.data, dtype=np.float64))
            self._problems[ENVELOPE] = ""
        except InputFault as fault:
            self._emg = self._zero
            self._fault(ENVELOPE, str(fault))
        self._envelope_index = first + count - 1
        if self.settings.publish_on_input:
            self._publish("envelope", now, msg.header.stamp)
        self._times.append(time.perf_counter() - start)

    def _on_joint_states(self, msg: JointState) -> None:
        now = time.monotonic()
        self._watchdog.feed(POSE, now)
        try:
            if len(msg.position) != len(msg.name):
                raise InputFault(f"joint states with {len(msg.name)} names and "
                                 f"{len(msg.position)} positions")
            self._pose.bind(msg.name)
            self._gravity = self._pose.update(msg.position).tolist()
            self._problems[POSE] = ""
        except InputFault as fault:
            self._gravity = self._zero
            self._fault(POSE, str(fault))
        if self.settings.publish_on_input:
            self._publish("joint_states", now, msg.header.stamp)

    def _on_quality(self, msg) -> None:
        problem = quality_problem(msg, self._pose.watch_names() if self._pose else (),
                                  self.settings.fault_underdetermined)
        if problem:
            self._fault(POSE, problem)

    def _on_timer(self) -> None:
        now = time.monotonic()
        if self._safety.active:
            stale = self._watchdog.stale(now)
            if stale:
                self._fault("inputs", stale)
        if now - self._last_publish >= self._period * 0.95 or not self.settings.publish_on_input:
            self._publish("timer", now, self.get_clock().now().to_msg())

    def _fault(self, source: str, reason: str) -> None:
        if source in self._problems:
            self._problems[source] = reason
        if self._safety.fault(reason):
            self.get_logger().error(f"FAULT: {reason}: command ramps to 0; call ~/enable to "
                                    "re-arm")
            self._update_diagnostics()

    # --- output ---------------------------------------------------------------------------

    def _publish(self, trigger: str, now: float, stamp) -> None:
        dt, self._last_publish = now - self._last_publish, now
        if self._safety.active:
            self._target = [e + g for e, g in zip(self._emg, self._gravity)]
        else:
            self._target = self._zero
        command = self._limiter.step(self._target, dt)
        # array('d') is rclpy's fast path for float64[] (a numpy array is checked per element).
        self._command.data = array.array("d", command)
        self._command_publisher.publish(self._command)
        self._published += 1
        if self._state_publisher is not None:
            self._publish_state(trigger, stamp, command)

    def _publish_state(self, trigger: str, stamp, command: list[float]) -> None:
        state = AssistState()
        state.header.stamp = stamp
        state.trigger = trigger
        state.state = self._safety.state
        state.reason = self._safety.reason or self._input_problems()
        state.joint_names = self.settings.joints
        state.command = array.array("d", command)
        state.target = array.array("d", self._target)
        state.emg_torque = array.array("d", self._emg)
        state.gravity_torque = array.array("d", self._gravity)
        state.agonist_activation = array.array("d", self._law.agonist)
        state.antagonist_activation = array.array("d", self._law.antagonist)
        state.envelope_index = self._envelope_index
        self._state_publisher.publish(state)

    # --- service --------------------------------------------------------------------------

    def _on_enable(self, request, response):
        if request.data:
            ok, message = self._safety.enable(self._health_problem())
        else:
            ok, message = self._safety.disable()
        if ok and request.data and self._pose is not None:
            self._pose.reset()
        # rclpy refuses two severities from one call site: two calls.
        if ok:
            self.get_logger().info(f"~/enable: {message}")
        else:
            self.get_logger().warning(f"~/enable: {message}")
        response.success, response.message = ok, message
        self._update_diagnostics()
        return response

    def _health_problem(self) -> str:
        """"" when the inputs are fresh and their last messages were usable."""
        stale = self._watchdog.stale(time.monotonic())
        if stale:
            return stale
        return self._input_problems()

    def _input_problems(self) -> str:
        """What is wrong with the last message of each input ("" when nothing)."""
        return "; ".join(f"{name}: {text}" for name, text in self._problems.items() if text)

    # --- diagnostics ----------------------------------------------------------------------

    def _update_diagnostics(self) -> None:
        s, safety, now = self.settings, self._safety, time.monotonic()
        times = np.array(self._times) * 1e6 if self._times else np.zeros(1)
        ages = {f"{name.replace(' ', '_')}_age_ms": (
            -1.0 if self._watchdog.age(name, now) is None
            else self._watchdog.age(name, now) * 1000.0) for name in self._watchdog.timeouts}
        values = dict(state=safety.state, faults=safety.faults, envelope_gaps=self._gaps,
                      commands_published=self._published,
                      envelope_callback_p50_us=float(np.percentile(times, 50)), **ages)
        for k, joint in enumerate(s.joints):
            values[f"{joint}_command_Nm"] = float(self._limiter.command[k])
            values[f"{joint}_target_Nm"] = float(self._target[k])
        if safety.state == FAULT:
            level, message = ERROR, f"FAULT (command ramps to 0, call ~/enable): {safety.reason}"
        elif safety.state == ENABLED:
            level, message = OK, "enabled: assisting"
        else:
            problem = self._health_problem()
            level = WARN if problem else OK
            message = "disabled (command 0)" + (f"; not ready to enable: {problem}" if problem
                                                 else "")
        self._diagnostics.set(level, message, **values)


    def close(self) -> None:
        """On shutdown: ramp the command to 0 at the rate limit (at most 2 s), then publish 0.

        The forward command controller would otherwise hold the last command for as long as
        it stays active."""
        self._safety.disable()
        self._target = self._zero
        deadline = time.monotonic() + 2.0
        while not self._limiter.at_zero() and time.monotonic() < deadline:
            time.sleep(self._period)
            self._publish("shutdown", time.monotonic(), self.get_clock().now().to_msg())
        self._limiter.reset()
        self._publish("shutdown", time.monotonic(), self.get_clock().now().to_msg())
        self.get_logger().info("stopped: command 0 published")


def main() -> None:
    main_for(AssistNode, "assist_node")


if __name__ == "__main__":
    main()
