"""sim_exo_node: a simulated one-joint exoskeleton (elbow) that takes the command a ros2_control
forward_command_controller would take and publishes its joint state.

    exo/commands (std_msgs/Float64MultiArray, N.m)  ->  sim_exo  ->  exo/joint_states (JointState)
                                                                 ->  /diagnostics

Like forward_command_controller, the last command stays in force (no timeout) and a command
of the wrong length is dropped; unlike it, the drop is counted and reported (WARN).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from biosig_ros.errors import ConfigError
from biosig_ros.robot.exo_sim import ExoSimSettings, OneJointExo
from biosig_ros.ros.diagnostics import OK, STALE, WARN, Diagnostics
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import input_qos, output_qos
from biosig_ros.settings import doc_field


@dataclass
class SimExoNodeSettings(ExoSimSettings):
    rate: float = doc_field(200.0, "Hz of integration steps and published joint states",
                            range=(1.0, 5000.0))
    substeps: int = doc_field(10, "integration substeps per step", range=(1, 1000))
    command_topic: str = doc_field("exo/commands", "Float64MultiArray torque command (N.m)")
    command_index: int = doc_field(0, "which value of the command drives this joint",
                                   range=(0, 1000))
    command_length: int = doc_field(1, "values a command must have (others are dropped, as "
                                    "forward_command_controller does)", range=(1, 1000))
    joint_states_topic: str = doc_field("exo/joint_states", "JointState of the simulated joint")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.rate) or self.rate <= 0:
            raise ConfigError(f"parameter 'rate' must be a positive number of Hz, "
                              f"got {self.rate!r}")
        if self.command_index >= self.command_length:
            raise ConfigError(f"parameter 'command_index' ({self.command_index}) must be below "
                              f"'command_length' ({self.command_length})")
        if not self.command_topic or not self.joint_states_topic:
            raise ConfigError("parameters 'command_topic' and 'joint_states_topic' must be set")


class SimExoNode(Node):
    def __init__(self):
        super().__init__("sim_exo")
        self.settings = s = declare_settings(self, SimExoNodeSettings)
        self._exo = OneJointExo(s)
        self._command = 0.0
        self._commands = self._dropped = self._reported_dropped = 0
        self._last_command: float | None = None
        self._last_step = time.monotonic()
        self._state = JointState()
        self._state.name = [s.joint_name]
        self._publisher = self.create_publisher(JointState, s.joint_states_topic, output_qos())
        self._diagnostics = Diagnostics(self, hardware_id="simulated exoskeleton")
        self.create_subscription(Float64MultiArray, s.command_topic, self._on_command,
                                 input_qos())
        self.create_timer(1.0 / s.rate, self._on_timer)
        self.create_timer(1.0, self._update_diagnostics)
        self.get_logger().info(
            f"ready: joint {s.joint_name} (inertia {s.inertia:g} kg.m^2, damping {s.damping:g} "
            f"N.m.s/rad, limits [{s.position_min:g}, {s.position_max:g}] rad) at {s.rate:g} Hz; "
            f"{s.command_topic}[{s.command_index}] -> {s.joint_states_topic}")

    def _on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != self.settings.command_length:
            self._dropped += 1
            return
        self._command = float(msg.data[self.settings.command_index])
        self._commands += 1
        self._last_command = time.monotonic()

    def _on_timer(self) -> None:
        now = time.monotonic()
        # Integrate the real elapsed time (a late timer must not slow the simulated joint), in
        # steps of at most 10 periods so that a long stall stays stable.
        dt = min(now - self._last_step, 10.0 / self.settings.rate)
        self._last_step = now
        self._exo.step(self._command, dt, self.settings.substeps)
        state = self._state
        state.header.stamp = self.get_clock().now().to_msg()
        state.position = [self._exo.position]
        state.velocity = [self._exo.velocity]
        state.effort = [self._exo.torque]
        self._publisher.publish(state)

    def _update_diagnostics(self) -> None:
        values = dict(position_rad=self._exo.position, velocity_rad_s=self._exo.velocity,
                      torque_Nm=self._exo.torque, commands=self._commands,
                      dropped_wrong_length=self._dropped, at_limit=self._exo.at_limit)
        dropped, self._reported_dropped = self._dropped - self._reported_dropped, self._dropped
        if dropped:
            level, message = WARN, (f"{dropped} command(s) of the wrong length dropped in the "
                                    f"last second (expected {self.settings.command_length} values)")
        elif self._last_command is None:
            level, message = STALE, f"no command yet on {self.settings.command_topic} (torque 0)"
        else:
            level, message = OK, "simulating"
        self._diagnostics.set(level, message, **values)


def main() -> None:
    # A robot acts on it: rclpy's standard executor (ros/executors.py).
    main_for(SimExoNode, "sim_exo_node", events_by_default=False)


if __name__ == "__main__":
    main()
