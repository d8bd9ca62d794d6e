"""Everything assist_node decides, without ROS and with an injected clock: which input may be
used (freshness by header stamp, gaps, order, non-finite values, the IK quality of each pose),
when the command is computed and published, the enable / disable / stop / reset states, dt and
the ramps, the watchdog, the shutdown ramp and its budget.

With settings.source "muscle_torque", the muscle torque (on_muscle_torque, paired by stamp with
on_torque_quality) takes the envelope's place under the same rules: fresh by stamp, in order,
finite, and a frame flagged by its quality faults.

The node calls on_envelope / on_joint_states / on_quality / on_timer with the messages' plain
contents and publishes the Command each returns (None: nothing to publish). The clock returns
seconds on the same time base as the header stamps (the node's clock: system time, or the
simulation's with use_sim_time). Clocks across machines are the user's to synchronise: an
input stamped too far in the future is a fault, not corrected.

Rules (each fault latches while enabled: the command ramps to 0 at the rate limit and stays
there until a fresh enable; while disabled a problem only blocks enabling):
- an input is used only when its stamp is at most max_input_age old and at most
  max_future_stamp ahead of the clock, later than the previous one used, finite, and (for
  the envelope) continues the previous chunk's sample index;
- the data in use ages: once the newest usable envelope or pose is older than max_input_age,
  or none arrived within its timeout, the next call (the timer's at the latest) faults;
- a pose waits for the IkQuality of the same stamp (before or after it) when the quality topic
  is used, and is refused when that quality flags it;
- a non-finite EMG torque, gravity torque or target faults (the limiter would also turn it
  into 0, but silently);
- the command is clamped to the torque limits and moves by at most rate_limit x dt, with dt
  the clock time since the previous command, capped at two periods.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from biosig_ros.robot.assist_law import AssistLaw, InputFault
from biosig_ros.robot.assist_settings import AssistSettings
from biosig_ros.robot.limiter import TorqueLimiter
from biosig_ros.robot.muscle_torque_law import MuscleTorqueLaw
from biosig_ros.robot.pose_quality import quality_problem
from biosig_ros.robot.safety import ENABLED, FAULT, STOPPED, SafetyState, Watchdog
from biosig_ros.robot.stamp_pairing import StampPairing

ENVELOPE, POSE, MUSCLE = "envelope", "joint states", "muscle torque"
OK, WARN, ERROR = "ok", "warn", "error"
RESUME_HOLD_S = 5.0  # longest a resumed command waits for a subscriber before ramping


@dataclass
class Command:
    """One command to publish, with what produced it (the content of AssistState)."""

    values: list[float]      # N.m per joint
    trigger: str             # envelope | joint_states | timer | shutdown
    stamp: float             # capture time of the triggering input (the clock's for the timer)
    state: str
    reason: str
    target: list[float]
    emg: list[float]
    gravity: list[float]
    agonist: list[float]
    antagonist: list[float]
    envelope_index: int


class AssistController:
    def __init__(self, settings: AssistSettings, law: AssistLaw, pose, clock: Callable[[], float],
                 quality: bool = False, initial_command: list[float] | None = None,
                 on_fault: Callable[[str], None] | None = None, torque_quality: bool = True):
        """pose: a PoseSupport (or an object with bind / update / reset / watch_names), None
        without a pose. quality: poses wait for their IkQuality. initial_command: what the
        controller may still hold from a crashed predecessor (ramped down from, never up to).
        on_fault(reason) is called once per latched fault. torque_quality (source
        muscle_torque): each muscle torque waits for its frame's quality."""
        s = self.settings = settings
        self._law, self._pose, self._clock, self._on_fault = law, pose, clock, on_fault
        self.period = 1.0 / s.rate
        self.limiter = TorqueLimiter(s.torque_limits, s.rate_limits, max_dt=2.0 * self.period)
        if initial_command is not None:
            self.limiter.command = [min(max(v, -limit), limit) if math.isfinite(v) else 0.0
                                    for v, limit in zip(initial_command, s.torque_limits)]
        # A resumed command is held (published unchanged) until a subscriber is matched: the
        # ramp's first messages would otherwise go out before the controller hears this new
        # publisher, and it would see the held value, then a later, smaller one: a step.
        self.holding = not self.limiter.at_zero()
        self._hold_start: float | None = None
        self.safety = SafetyState()
        self._muscle = (MuscleTorqueLaw(s.torque_dofs, s.torque_gains)
                        if s.source == "muscle_torque" else None)
        timeouts = ({ENVELOPE: s.envelope_timeout} if self._muscle is None
                    else {MUSCLE: s.torque_timeout})
        if pose is not None:
            timeouts[POSE] = s.pose_timeout
        self.watchdog = Watchdog(timeouts)
        self.problems = {name: f"no {name} received yet" for name in timeouts}
        self.used_stamp: dict[str, float | None] = {name: None for name in timeouts}
        self._needs_quality = quality and pose is not None
        self._pose_pairing = StampPairing()
        self._needs_torque_quality = torque_quality and self._muscle is not None
        self._torque_pairing = StampPairing()
        self._zero = [0.0] * len(s.joints)
        self.emg = self.gravity = self.target = self._zero  # N.m per joint
        self._expected_index: int | None = None
        self.envelope_index = -1
        self.gaps = self.published = 0
        self._last_publish: float | None = None  # the first command moves one period's worth

    # --- inputs ---------------------------------------------------------------------------

    def on_envelope(self, stamp: float, first_index: int, count: int, sample_rate: float,
                    channel_names: list[str], unit: str, data) -> Command | None:
        """A SignalChunk: stamp = acquisition time of its first sample; data samples x
        channels, flat. Its newest sample is the one used (and the one whose age counts)."""
        if self._muscle is not None:
            return None
        now = self._clock()
        try:
            if count < 1 or len(data) != count * len(channel_names):
                raise InputFault(f"malformed envelope chunk: {len(data)} values for {count} "
                                 f"samples x {len(channel_names)} channels")
            if not (math.isfinite(sample_rate) and sample_rate > 0):
                raise InputFault(f"malformed envelope chunk: sample rate {sample_rate!r}")
            newest = stamp + (count - 1) / sample_rate
            self._check_fresh(ENVELOPE, newest, now)
            expected, self._expected_index = self._expected_index, first_index + count
            if expected is not None and first_index != expected:
                self.gaps += 1
                raise InputFault(f"gap in the envelope: sample index {first_index}, expected "
                                 f"{expected}" + (" (stream went back)" if first_index < expected
                                                  else f" ({first_index - expected} missing)"))
            self._law.bind(channel_names, unit)
            emg = self._law.torque(data)
            if not all(map(math.isfinite, emg)):
                raise InputFault(f"non-finite EMG torque {emg} (gains x activations)")
            self.emg = emg
            self.envelope_index = first_index + count - 1
            self._accept(ENVELOPE, newest, now)
        except InputFault as fault:
            self.emg = self._zero
            self._fault(ENVELOPE, str(fault))
        return self._output("envelope", stamp, now) if self.settings.publish_on_input else None

    def on_muscle_torque(self, stamp: float, names: list[str], efforts) -> Command | None:
        """A muscle torque JointState (source muscle_torque; stamp = the pose's capture time),
        used once the quality of its frame is there (now, or when it arrives)."""
        if self._muscle is None:
            return None
        problem = (self._torque_pairing.input(stamp, (stamp, names, efforts))
                   if self._needs_torque_quality else "")
        return None if problem is None else self._use_muscle_torque(stamp, names, efforts,
                                                                    problem)

    def on_torque_quality(self, stamp: float, problem: str) -> Command | None:
        """The quality of the muscle torque of the frame stamped `stamp`: "" when clean, else
        its flags (the frame then faults)."""
        if not self._needs_torque_quality:
            return None
        waiting = self._torque_pairing.quality(stamp, problem)
        return None if waiting is None else self._use_muscle_torque(*waiting, problem)

    def _use_muscle_torque(self, stamp: float, names, efforts, problem: str) -> Command | None:
        now = self._clock()
        try:
            if problem:
                raise InputFault(f"muscle torque flagged by torque/quality: {problem}")
            if len(efforts) != len(names):
                raise InputFault(f"muscle torque with {len(names)} names and {len(efforts)} "
                                 "efforts")
            self._check_fresh(MUSCLE, stamp, now)
            self._muscle.bind(names)
            torque = self._muscle.torque(efforts)
            if not all(map(math.isfinite, torque)):
                raise InputFault(f"non-finite muscle torque {torque} (torque_gains x effort)")
            self.emg = torque
            self._accept(MUSCLE, stamp, now)
        except InputFault as fault:
            self.emg = self._zero
            self._fault(MUSCLE, str(fault))
        return self._output("muscle_torque", stamp, now) if self.settings.publish_on_input else None

    def on_joint_states(self, stamp: float, names: list[str], positions) -> Command | None:
        """A JointState (stamp = the marker frame's capture time). With the quality topic, it
        is used once the IkQuality of the same stamp is there (now, or when it arrives)."""
        if self._pose is None:
            return None
        problem = (self._pose_pairing.input(stamp, (stamp, names, positions))
                   if self._needs_quality else "")
        return None if problem is None else self._use_pose(stamp, names, positions, problem)

    def on_quality(self, stamp: float, quality) -> Command | None:
        """An IkQuality (any object with its fields); a pose waiting for it is used now."""
        if self._pose is None:
            return None
        problem = quality_problem(quality, self._pose.watch_names(),
                                  self.settings.fault_underdetermined)
        if not self._needs_quality:
            if problem:
                self._fault(POSE, problem)
            return None
        waiting = self._pose_pairing.quality(stamp, problem)
        return None if waiting is None else self._use_pose(*waiting, problem)

    def _use_pose(self, stamp: float, names, positions, problem: str) -> Command | None:
        now = self._clock()
        try:
            if problem:
                raise InputFault(problem)
            if len(positions) != len(names):
                raise InputFault(f"joint states with {len(names)} names and "
                                 f"{len(positions)} positions")
            self._check_fresh(POSE, stamp, now)
            self._pose.bind(names)
            gravity = [float(g) for g in self._pose.update(positions)]
            if not all(map(math.isfinite, gravity)):
                raise InputFault(f"non-finite gravity torque {gravity} at this pose")
            self.gravity = gravity
            self._accept(POSE, stamp, now)
        except InputFault as fault:
            self.gravity = self._zero
            self._fault(POSE, str(fault))
        if self.settings.publish_on_input:
            return self._output("joint_states", stamp, now)
        return None

    def _check_fresh(self, name: str, stamp: float, now: float) -> None:
        s = self.settings
        if not math.isfinite(stamp):
            raise InputFault(f"{name} without a usable stamp ({stamp!r})")
        age = now - stamp
        if age > s.max_input_age:
            raise InputFault(f"stale {name}: stamped {age * 1e3:.0f} ms ago "
                             f"(max_input_age {s.max_input_age * 1e3:.0f} ms)")
        if -age > s.max_future_stamp:
            raise InputFault(f"{name} stamped {-age * 1e3:.0f} ms in the future "
                             f"(max_future_stamp {s.max_future_stamp * 1e3:.0f} ms): clocks "
                             "not synchronised?")
        last = self.used_stamp[name]
        if last is not None and stamp <= last:
            raise InputFault(f"{name} out of order: stamped {(last - stamp) * 1e3:.1f} ms "
                             "before the previous one used")

    def _accept(self, name: str, stamp: float, now: float) -> None:
        self.used_stamp[name] = stamp
        self.watchdog.feed(name, now)
        self.problems[name] = ""

    def on_timer(self) -> Command | None:
        """Every period: the watchdog, and a command when no input produced one for a period
        (always, with publish_on_input false)."""
        now = self._clock()
        if self.safety.active:
            stale = self.stale(now)
            if stale:
                self._fault("inputs", stale)
        if (self._last_publish is None or now - self._last_publish >= self.period * 0.95
                or not self.settings.publish_on_input):
            return self._output("timer", now, now)
        return None

    def stale(self, now: float) -> str:
        """"" when every input arrived within its timeout and the newest usable one of each is
        within max_input_age; else what is stale."""
        late = self.watchdog.stale(now)
        if late:
            return late
        for name, stamp in self.used_stamp.items():
            age = now - stamp
            if age > self.settings.max_input_age:
                return (f"stale {name}: the newest usable one was stamped {age * 1e3:.0f} ms "
                        f"ago (max_input_age {self.settings.max_input_age * 1e3:.0f} ms)")
        return ""

    def _fault(self, source: str, reason: str) -> None:
        if source in self.problems:
            self.problems[source] = reason
        if self.safety.fault(reason) and self._on_fault is not None:
            self._on_fault(reason)

    # --- output ---------------------------------------------------------------------------

    def _output(self, trigger: str, stamp: float, now: float) -> Command:
        if self.safety.active:
            stale = self.stale(now)
            if stale:
                self._fault("inputs", stale)
        target = self._zero
        if self.safety.active:
            target = [e + g for e, g in zip(self.emg, self.gravity)]
            if not all(map(math.isfinite, target)):
                self._fault("inputs", f"non-finite target {target}")
                target = self._zero
        self.target = target
        dt = self.period if self._last_publish is None else now - self._last_publish
        self._last_publish = now
        if self.holding:
            self._hold_start = now if self._hold_start is None else self._hold_start
            if now - self._hold_start > RESUME_HOLD_S:
                self.holding = False  # nobody listening: the ramp goes out anyway
            dt = 0.0
        values = self.limiter.step(target, dt)
        self.published += 1
        return Command(values, trigger, stamp, self.safety.state, self.reason(), target,
                       self.emg, self.gravity, *self._activations(),
                       self.envelope_index)

    def _activations(self) -> tuple[list[float], list[float]]:
        if self._muscle is not None:
            return self._zero, self._zero
        return self._law.agonist, self._law.antagonist

    def reason(self) -> str:
        return self.safety.reason or self.input_problems()

    def input_problems(self) -> str:
        """What is wrong with the last message of each input ("" when nothing)."""
        return "; ".join(f"{name}: {text}" for name, text in self.problems.items() if text)

    def health_problem(self) -> str:
        """"" when the inputs are fresh and their last messages were usable. An input whose
        messages are refused also goes stale: both are named, the refusal being the cause."""
        return "; ".join(p for p in (self.stale(self._clock()), self.input_problems()) if p)

    # --- requests -------------------------------------------------------------------------

    def enable(self, on: bool) -> tuple[bool, str]:
        if not on:
            return self.safety.disable()
        ok, message = self.safety.enable(self.health_problem())
        if ok and self._pose is not None:
            self._pose.reset()  # no step check against a pose from before the pause
        return ok, message

    def heard(self) -> None:
        """A subscriber of the command is matched: a held (resumed) command starts its ramp."""
        self.holding = False

    def stop(self) -> tuple[bool, str]:
        return self.safety.stop()

    def reset(self) -> tuple[bool, str]:
        return self.safety.reset()

    # --- shutdown -------------------------------------------------------------------------

    def shutdown_budget(self) -> float:
        """Seconds the ramp from the current command to 0 takes at the rate limits, plus one
        period for the final 0."""
        return max(abs(c) / r for c, r in zip(self.limiter.command,
                                              self.settings.rate_limits)) + self.period

    def worst_shutdown_budget(self) -> float:
        """The budget from the torque limits (the longest a shutdown can take)."""
        return max(t / r for t, r in zip(self.settings.torque_limits,
                                         self.settings.rate_limits)) + self.period

    def shutdown_give_up(self) -> float:
        """Seconds after which a shutdown stops ramping (a process starved of CPU ramps more
        slowly: each step is at most two periods' worth): four times the worst budget, plus
        1 s. The controller then holds what was reached, never a step to 0."""
        return 4.0 * self.worst_shutdown_budget() + 1.0

    def shutdown_step(self) -> Command:
        """One step of the ramp to 0 on shutdown (call every period until at_zero())."""
        if self.safety.state != STOPPED:
            self.safety.disable()
        now = self._clock()
        return self._output("shutdown", now, now)

    def at_zero(self) -> bool:
        return self.limiter.at_zero()

    # --- diagnostics ----------------------------------------------------------------------

    def status(self) -> tuple[str, str, dict]:
        """(level OK / WARN / ERROR, message, values) for /diagnostics."""
        now, safety = self._clock(), self.safety
        values: dict = dict(state=safety.state, faults=safety.faults, envelope_gaps=self.gaps,
                            commands_published=self.published)
        for name in self.watchdog.timeouts:
            stamp = self.used_stamp[name]
            values[f"{name.replace(' ', '_')}_stamp_age_ms"] = (
                -1.0 if stamp is None else (now - stamp) * 1e3)
        for k, joint in enumerate(self.settings.joints):
            values[f"{joint}_command_Nm"] = float(self.limiter.command[k])
            values[f"{joint}_target_Nm"] = float(self.target[k])
        if safety.state == FAULT:
            return ERROR, f"FAULT (command ramps to 0, call ~/enable): {safety.reason}", values
        if safety.state == STOPPED:
            return WARN, f"STOPPED (command ramps to 0, call ~/reset): {safety.reason}", values
        if safety.state == ENABLED:
            return OK, "enabled: assisting", values
        problem = self.health_problem()
        return (WARN if problem else OK, "disabled (command 0)"
                + (f"; not ready to enable: {problem}" if problem else ""), values)
