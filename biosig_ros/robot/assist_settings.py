"""Parameters of the assist node, checked at start: a bad one is one ConfigError line.

Per-joint parameters are lists in joint order (the order of the command's values); a list of
one value applies to every joint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from biosig_ros.errors import ConfigError
from biosig_ros.robot.assist_law import JointLaw
from biosig_ros.settings import doc_field, realtime_priority_field

PER_JOINT = ("antagonists", "gains", "deadbands", "torque_limits", "rate_limits",
             "gravity_dofs", "gravity_signs", "torque_dofs", "torque_gains")
SOURCES = ("emg_law", "muscle_torque")


@dataclass
class AssistSettings:
    joints: list[str] = doc_field(["elbow"], "exoskeleton joints, in the order of the command's "
                                  "values (the controller's `joints`)")
    source: str = doc_field(
        "emg_law", "what the assistance follows: 'emg_law' (gains x agonist - antagonist "
        "activation of the envelope) or 'muscle_torque' (torque_gains x the person's muscle "
        "torque per DoF, torque_node's torque/muscle, each frame only once torque/quality "
        "passed it)")
    agonists: list[str] = doc_field(["EMG1"], "per joint: envelope channel of the agonist "
                                    "(positive torque)")
    antagonists: list[str] = doc_field(["EMG2"], "per joint: envelope channel of the antagonist "
                                       "(negative torque); '' = none")
    gains: list[float] = doc_field([5.0], "per joint: N.m per unit of activation difference "
                                   "(fraction of MVC)")
    deadbands: list[float] = doc_field([0.05], "per joint: activation difference (fraction of "
                                       "MVC) below which the EMG torque is 0")
    torque_limits: list[float] = doc_field([5.0], "per joint: |command| limit (N.m)")
    rate_limits: list[float] = doc_field([20.0], "per joint: |d command / dt| limit (N.m/s); "
                                         "also the ramp to 0 on a fault")
    max_activation: float = doc_field(3.0, "an activation above this (fraction of MVC) is an "
                                      "artefact: fault", range=(0.0, 1e6))
    mvc_channels: list[str] = doc_field([], "channels of `mvc` (for an envelope in volts)")
    mvc: list[float] = doc_field([], "MVC per channel of mvc_channels, in volts")
    mvc_file: str = doc_field("", "MVC YAML written by emg_processing's ~/calibrate_mvc "
                              "(channel_names, mvc); merged with mvc_channels/mvc")
    torque_dofs: list[str] = doc_field([""], "per joint, source muscle_torque: model DoF whose "
                                       "muscle torque is followed; '' = none (0)")
    torque_gains: list[float] = doc_field([0.2], "per joint, source muscle_torque: command "
                                          "N.m per N.m of muscle torque (-: the exo joint "
                                          "turns opposite to the DoF)")
    muscle_torque_topic: str = doc_field("torque/muscle", "JointState muscle torque (effort "
                                         "per DoF) to act on, source muscle_torque")
    torque_quality_topic: str = doc_field(
        "torque/quality", "DiagnosticStatus per frame (hardware_id = its stamp) of the muscle "
        "torque: a frame waits for it, and one flagged (level not OK) faults; '' = not used")
    torque_timeout: float = doc_field(0.1, "s without a muscle torque while enabled = fault "
                                      "(source muscle_torque)", range=(0.001, 10.0))
    support_fraction: float = doc_field(0.0, "share of the model's gravity torque to support "
                                        "(0 = none, 1 = all)", range=(0.0, 1.0))
    gravity_dofs: list[str] = doc_field([""], "per joint: model DoF whose gravity torque is "
                                        "supported; '' = none")
    gravity_signs: list[float] = doc_field([1.0], "per joint: +1 when the exo joint turns like "
                                           "the model DoF, -1 when opposite")
    model_path: str = doc_field("data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod",
                                "biorbd model of the joint states (ranges, gravity)")
    watch_dofs: list[str] = doc_field([], "model DoFs checked for range and jumps; empty = all")
    range_margin: float = doc_field(0.0, "rad (m) beyond the model's range still accepted",
                                    range=(0.0, 10.0))
    max_pose_step: float = doc_field(0.35, "rad (m) a watched DoF may move between two joint "
                                     "states; more = fault (0 = no check)", range=(0.0, 100.0))
    envelope_topic: str = doc_field("emg/envelope", "SignalChunk envelope to act on")
    joint_states_topic: str = doc_field("ik/joint_states", "JointState pose; '' = no pose "
                                        "(no gravity support, no pose checks)")
    quality_topic: str = doc_field("ik/quality", "IkQuality per frame: re-initialisation and "
                                   "out-of-range flags fault; '' = not used")
    fault_underdetermined: bool = doc_field(True, "a segment that IK reports as seen by too "
                                            "few markers (its pose guessed) faults too")
    command_topic: str = doc_field("exo/commands", "Float64MultiArray command, one value per "
                                   "joint (remap to /<controller>/commands)")
    state_topic: str = doc_field("assist/state", "AssistState (what the node did and why); "
                                 "'' = not published")
    rate: float = doc_field(100.0, "Hz of the watchdog timer (it publishes when no input did "
                            "for a period)", range=(1.0, 2000.0))
    publish_on_input: bool = doc_field(True, "also publish on every envelope and joint state "
                                       "(lowest delay); false = on the timer only")
    envelope_timeout: float = doc_field(0.1, "s without an envelope while enabled = fault",
                                        range=(0.001, 10.0))
    pose_timeout: float = doc_field(0.1, "s without joint states while enabled = fault",
                                    range=(0.001, 10.0))
    max_input_age: float = doc_field(
        0.1, "s: an input whose header stamp (capture time) is older than this on arrival, or "
        "while in use, is stale: fault, never used (the exo_demo chain delivers in 6 ms at p50, "
        "10 ms at p99 on the idle machine, docs/robot_integration.md)", range=(0.001, 10.0))
    max_future_stamp: float = doc_field(
        0.02, "s: an input stamped further than this in the future is a fault (unsynchronised "
        "clocks across machines)", range=(0.0, 10.0))
    realtime_priority: int = realtime_priority_field()
    command_memory: str = doc_field(
        "auto", "file keeping the last command published, so that a node restarted after a "
        "crash ramps down from what the controller still holds instead of stepping to 0; "
        "'auto' = /dev/shm/biosig_ros/ by ROS domain, node and topic; '' = none")
    command_memory_max_age: float = doc_field(
        60.0, "s: a command remembered from longer ago is not resumed (the controller may have "
        "been reset since); a warning says what it was", range=(0.0, 3600.0))

    def __post_init__(self) -> None:
        if not self.joints or any(not j for j in self.joints):
            raise ConfigError("parameter 'joints' must list at least one non-empty joint name")
        if len(set(self.joints)) != len(self.joints):
            raise ConfigError(f"parameter 'joints' names a joint twice: {self.joints}")
        n = len(self.joints)
        if self.source not in SOURCES:
            raise ConfigError(f"parameter 'source' must be one of {', '.join(SOURCES)}, got "
                              f"{self.source!r}")
        if self.source == "emg_law":
            self._check_emg_law(n)
        elif not self.muscle_torque_topic:
            raise ConfigError("source muscle_torque needs 'muscle_torque_topic'")
        for name in PER_JOINT:
            values = getattr(self, name)
            if len(values) == 1 and n > 1:
                setattr(self, name, values * n)
            elif len(values) != n:
                raise ConfigError(f"parameter '{name}' has {len(values)} values for {n} "
                                  f"joint(s): give one per joint (or one for all)")
        if self.source == "muscle_torque" and not any(self.torque_dofs):
            raise ConfigError("source muscle_torque: parameter 'torque_dofs' names no model DoF")
        self._check_values()

    def _check_emg_law(self, n: int) -> None:
        if len(self.agonists) != n or any(not a for a in self.agonists):
            raise ConfigError(f"parameter 'agonists' must give one channel per joint ({n}), "
                              f"got {self.agonists}")
        if not self.envelope_topic:
            raise ConfigError("parameter 'envelope_topic' must be set")

    def _check_values(self) -> None:
        _check_numbers("torque_gains", self.torque_gains, positive=False)
        _check_numbers("gains", self.gains, positive=False)
        _check_numbers("deadbands", self.deadbands, positive=False, nonnegative=True)
        _check_numbers("torque_limits", self.torque_limits, positive=True)
        _check_numbers("rate_limits", self.rate_limits, positive=True)
        if any(s not in (1.0, -1.0) for s in self.gravity_signs):
            raise ConfigError(f"parameter 'gravity_signs' entries must be 1 or -1, got "
                              f"{self.gravity_signs}")
        for name in ("max_activation", "support_fraction", "range_margin", "max_pose_step",
                     "rate", "envelope_timeout", "pose_timeout", "max_input_age",
                     "max_future_stamp", "command_memory_max_age", "torque_timeout"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"parameter '{name}' must be finite")
        if not self.max_activation > 0:
            raise ConfigError("parameter 'max_activation' must be > 0 (fraction of MVC)")
        if len(self.mvc) != len(self.mvc_channels):
            raise ConfigError(f"parameters 'mvc' ({len(self.mvc)} values) and 'mvc_channels' "
                              f"({len(self.mvc_channels)} names) must have the same length")
        _check_numbers("mvc", self.mvc, positive=True)
        if not self.command_topic:
            raise ConfigError("parameter 'command_topic' must be set")
        if self.support_fraction > 0 and not any(self.gravity_dofs):
            raise ConfigError("parameter 'support_fraction' is above 0 but 'gravity_dofs' "
                              "names no model DoF")
        if any(self.gravity_dofs) and self.support_fraction > 0 and not self.joint_states_topic:
            raise ConfigError("gravity support needs the pose: set 'joint_states_topic'")

    @property
    def uses_pose(self) -> bool:
        return bool(self.joint_states_topic)

    def joint_laws(self) -> list[JointLaw]:
        return [JointLaw(a, b, g, d) for a, b, g, d in
                zip(self.agonists, self.antagonists, self.gains, self.deadbands)]


def _check_numbers(name: str, values, positive: bool, nonnegative: bool = False) -> None:
    for i, value in enumerate(values):
        if not math.isfinite(value) or (positive and value <= 0) or (nonnegative and value < 0):
            need = "> 0" if positive else ">= 0" if nonnegative else "finite"
            raise ConfigError(f"parameter '{name}' entry {i} must be {need}, got {value!r}")


def mvc_table(settings: AssistSettings, file_values: dict[str, float]) -> dict[str, float]:
    """MVC per channel name: the file's, then the parameters' (which win)."""
    table = dict(file_values)
    table.update(zip(settings.mvc_channels, settings.mvc))
    return table

