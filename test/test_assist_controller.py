"""The assist controller (robot.assist_controller) against random input sequences, with a fake
clock: no ROS, no processes. Properties: the command stays within the torque limits and moves
by at most rate_limit x dt; a bad input (stale, from the future, old burst, NaN / inf, gap,
index going back, malformed, flagged by IK quality, non-finite gravity) faults at once and
data older than max_input_age is never used (at the latest at the next timer tick); nothing
enables but an enable request; a stop holds until reset; healthy inputs never fault.
The property tests run for both assistance sources: the EMG law on the envelope, and the
muscle torque (torque_node's torque/muscle with its torque/quality) in the envelope's place."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biosig_ros.robot.assist_controller import AssistController
from biosig_ros.robot.assist_law import AssistLaw, InputFault
from biosig_ros.robot.assist_settings import AssistSettings
from biosig_ros.robot.safety import DISABLED, ENABLED, FAULT, STOPPED

LIMITS = [3.0, 0.5]
RATES = [20.0, 10.0]
SETTINGS = dict(joints=["elbow", "wrist"], agonists=["A", "C"], antagonists=["B", ""],
                gains=[4.0, 1.0], deadbands=[0.05, 0.0], torque_limits=LIMITS,
                rate_limits=RATES, max_activation=3.0, support_fraction=0.5,
                gravity_dofs=["q0", ""], rate=100.0, max_input_age=0.1, max_future_stamp=0.02,
                # Arrival timeouts longer than max_input_age: the stamps must do the work.
                envelope_timeout=0.3, pose_timeout=0.3)
# The muscle torque source: elbow = 4 x effort(d0), wrist = 1 x effort(d2); the generated
# activations (a, b, c) become the efforts (a - b, b, c), so both sources see alike targets.
MUSCLE_SETTINGS = dict(source="muscle_torque", torque_dofs=["d0", "d2"], torque_gains=[4.0, 1.0],
                       torque_timeout=0.3)
DOFS = ["d0", "d1", "d2"]
SOURCES = ["emg_law", "muscle_torque"]
PERIOD = 0.01
CHANNELS = ["A", "B", "C"]
NAMES = ["q0", "q1"]
EPS = 1e-9


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


class FakePose:
    """Gravity torque = 2 x q0 on the elbow (so a NaN q0 is a NaN gravity torque: the
    controller's own check must catch it, no pose check here)."""

    def bind(self, names):
        if list(names) != NAMES:
            raise InputFault("joint states lack model DoF(s)")

    def update(self, positions):
        return [2.0 * positions[0], 0.0]

    def reset(self):
        pass

    def watch_names(self):
        return NAMES


def quality(bad: bool = False):
    return SimpleNamespace(frame_number=1, reinitialised=bad,
                           reinitialisation_reason="loop restart" if bad else "",
                           dofs_out_of_range=[], underdetermined_segments=[])


def make(source: str = "emg_law", **overrides):
    clock = FakeClock()
    extra = MUSCLE_SETTINGS if source == "muscle_torque" else {}
    s = AssistSettings(**{**SETTINGS, **extra, **overrides})
    law = AssistLaw(s.joint_laws(), {}, s.max_activation)
    return AssistController(s, law, FakePose(), clock, quality=True), clock


class Run:
    """Feeds a controller event by event like the node would, calls its timer whenever the
    clock passes a period (late when an event takes long), and checks every command."""

    def __init__(self, source: str = "emg_law", **overrides):
        self.c, self.clock = make(source, **overrides)
        self.muscle = source == "muscle_torque"
        self.s = self.c.settings
        self.index = 0
        self.last_stamp = self.clock.now - 1.0    # the newest stamp generated as fresh
        self.good = {"envelope": None, "pose": None}  # (newest stamp, arrival) last accepted
        self.last_command = [0.0, 0.0]
        self.last_command_time = self.clock.now - PERIOD  # the first command: one period
        self.next_timer = self.clock.now + PERIOD
        self.commands = 0

    # --- what the node would do -----------------------------------------------------------

    def advance(self, dt: float) -> None:
        """The process stalled for dt: the timer fires late, at the end (at most twice)."""
        self.clock.now += dt
        while self.clock.now >= self.next_timer:
            self.next_timer = max(self.next_timer + PERIOD, self.clock.now - PERIOD)
            self.check(self.c.on_timer())
            self.check_not_stale()

    def idle(self, dt: float) -> None:
        """No input for dt, the timer on time."""
        end = self.clock.now + dt
        while self.next_timer <= end:
            self.advance(self.next_timer - self.clock.now)
        self.advance(end - self.clock.now)

    def fresh_stamp(self, delay: float) -> float:
        """Within the bounds and after the previous one (an in-order, healthy stream)."""
        self.last_stamp = max(self.clock.now - delay, self.last_stamp + 1e-6)
        return self.last_stamp

    def envelope(self, kind: str, values, count: int = 1, delay: float = 0.0) -> str:
        """One chunk (with the muscle torque source: one muscle torque frame instead); its
        kind when it is bad by construction, else ""."""
        if self.muscle:
            return self.muscle_torque(kind, values, "after" if count == 3 else "before", delay)
        rate = 100.0
        data = [float(v) for v in values] * count
        first = self.index
        stamp = self.fresh_stamp(delay) - (count - 1) / rate
        bad = kind != "fresh"
        advances = True
        if kind == "stale":
            stamp, advances = self.clock.now - 2.0, False
        elif kind == "future":
            stamp, advances = self.clock.now + 0.5, False
        elif kind == "gap":
            first += 3
        elif kind == "back" and self.index > 0:
            first -= 1
        elif kind == "back":
            first += 1
        elif kind == "malformed":
            data, advances = data[:-1], False
        elif kind in ("nan", "inf", "huge"):
            data[0] = {"nan": math.nan, "inf": math.inf, "huge": 1e9}[kind]
        if advances:
            self.index = first + count
        newest = stamp + (count - 1) / rate
        self.check(self.c.on_envelope(stamp, first, count, rate, CHANNELS, "", data))
        if not bad:
            self.good["envelope"] = (newest, self.clock.now)
        return kind if bad else ""

    def muscle_torque(self, kind: str, values, order: str, delay: float = 0.0) -> str:
        """One torque/muscle frame and its torque/quality (before or after it, or lost); the
        envelope's kinds map onto it: gap = flagged by its quality, back = out of order,
        malformed = efforts and names differ in length, huge = a large but finite torque (the
        limits clamp it: not a fault)."""
        a, b, c = values
        efforts = [float(a - b), float(b), float(c)]
        stamp = self.fresh_stamp(delay)
        if kind == "back" and self.good["envelope"] is None:
            kind = "fresh"
        if kind == "stale":
            stamp = self.clock.now - 2.0
        elif kind == "future":
            stamp = self.clock.now + 0.5
        elif kind == "back":
            stamp = self.good["envelope"][0] - 0.001
        elif kind == "malformed":
            efforts = efforts[:-1]
        elif kind in ("nan", "inf", "huge"):
            efforts[0] = {"nan": math.nan, "inf": -math.inf, "huge": 1e9}[kind]
        problem = "saturated muscle activation" if kind == "gap" else ""
        if order == "before":
            self.check(self.c.on_torque_quality(stamp, problem))
        self.check(self.c.on_muscle_torque(stamp, DOFS, efforts))
        if order == "after":
            self.check(self.c.on_torque_quality(stamp, problem))
        if order == "lost":
            return ""
        bad = kind not in ("fresh", "huge")
        if not bad:
            self.good["envelope"] = (stamp, self.clock.now)
        return kind if bad else ""

    def pose(self, kind: str, order: str, q0: float, delay: float = 0.0) -> str:
        stamp = self.fresh_stamp(delay)
        positions = [q0, 0.1]
        bad_quality = kind == "flagged"
        if kind == "stale":
            stamp = self.clock.now - 2.0
        elif kind == "future":
            stamp = self.clock.now + 0.5
        elif kind == "nan":
            positions[0] = math.nan
        if order in ("before", "lost_pose"):
            self.check(self.c.on_quality(stamp, quality(bad_quality)))
        if order != "lost_pose":
            self.check(self.c.on_joint_states(stamp, NAMES, positions))
        if order == "after":
            self.check(self.c.on_quality(stamp, quality(bad_quality)))
        used = order in ("before", "after")
        if used and kind == "fresh":
            self.good["pose"] = (stamp, self.clock.now)
        return kind if used and kind != "fresh" else ""

    # --- the properties -------------------------------------------------------------------

    def check(self, command) -> None:
        if command is None:
            return
        values, now = command.values, self.clock.now
        assert len(values) == 2 and all(map(math.isfinite, values)), values
        for k, value in enumerate(values):
            assert abs(value) <= LIMITS[k] + EPS, (k, value)
            step = abs(value - self.last_command[k])
            dt = now - self.last_command_time
            assert step <= RATES[k] * dt + EPS, (k, step, dt)
            assert step <= RATES[k] * 2 * PERIOD + EPS, (k, step)  # dt capped at 2 periods
        if command.state == ENABLED:
            # Nothing older than max_input_age went into this command.
            for name in ("envelope", "pose"):
                assert self.good[name] is not None
                stamp, arrival = self.good[name]
                assert now - stamp <= self.s.max_input_age + EPS, (name, now - stamp)
                assert now - arrival <= self.s.envelope_timeout + EPS
        self.last_command, self.last_command_time = list(values), now
        self.commands += 1

    def check_not_stale(self) -> None:
        """After a timer tick: enabled only on data within its bounds (a fault within one
        period of the data going stale)."""
        if self.c.safety.state != ENABLED:
            return
        now = self.clock.now
        for name in ("envelope", "pose"):
            stamp, arrival = self.good[name]
            assert now - stamp <= self.s.max_input_age + EPS, (name, now - stamp)
            assert now - arrival <= self.s.envelope_timeout + EPS, (name, now - arrival)


ACTIVATION = st.floats(0.0, 1.0)
VALUES = st.tuples(ACTIVATION, ACTIVATION, ACTIVATION)
ENVELOPE_KINDS = st.sampled_from(["fresh"] * 6 + ["stale", "future", "gap", "back", "malformed",
                                                  "nan", "inf", "huge"])
POSE_KINDS = st.sampled_from(["fresh"] * 6 + ["stale", "future", "nan", "flagged"])
ORDERS = st.sampled_from(["before", "after", "before", "after", "lost_pose", "lost_quality"])
DELAY = st.floats(0.0, 0.05)
EVENTS = st.one_of(
    st.tuples(st.just("envelope"), ENVELOPE_KINDS, VALUES, st.integers(1, 4), DELAY),
    st.tuples(st.just("pose"), POSE_KINDS, ORDERS, st.floats(-1.0, 1.0), DELAY),
    st.tuples(st.just("wait"), st.floats(0.0, 0.03)),
    st.tuples(st.just("idle"), st.floats(0.0, 0.5)),
    st.tuples(st.just("hold"), VALUES, st.floats(-1.0, 1.0), st.integers(1, 40)),
    st.tuples(st.just("hold"), st.tuples(st.just(1.0), st.just(0.0), st.just(1.0)),
              st.floats(0.5, 1.0), st.integers(10, 40)),  # towards the torque limits
    st.tuples(st.just("stall"), st.one_of(st.floats(0.05, 0.5), st.floats(0.5, 3.0))),
    st.tuples(st.just("burst"), st.integers(2, 20)),
    st.tuples(st.just("lost"), VALUES),  # muscle torque: a frame whose quality never comes
    st.tuples(st.just("enable"), st.booleans()),
    st.just(("enable", True)),  # more often: most properties are about the enabled state
    st.tuples(st.just("stop"),),
    st.tuples(st.just("reset"),),
)
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def healthy_start(run: Run) -> None:
    """Fresh inputs for a while, so that enabling can succeed."""
    for _ in range(3):
        run.envelope("fresh", (0.5, 0.1, 0.2))
        run.pose("fresh", "before", 0.4)
        run.advance(0.005)


def commanding_run() -> Run:
    """Enabled, after 30 periods of the same fresh envelope and pose (the command settled)."""
    run = Run()
    healthy_start(run)
    assert run.c.enable(True)[0]
    for _ in range(30):
        run.envelope("fresh", (1.0, 0.0, 1.0))
        run.pose("fresh", "before", 0.5)
        run.advance(PERIOD)
    return run


@pytest.mark.parametrize("source", SOURCES)
@settings(PROPERTY, max_examples=600)
@given(events=st.lists(EVENTS, max_size=120))
def test_random_inputs_never_break_the_limits_and_bad_inputs_always_fault(source, events):
    run = Run(source)
    healthy_start(run)
    stopped = False
    for event in events:
        before = run.c.safety.state
        kind = event[0]
        bad = ""
        if kind == "envelope":
            bad = run.envelope(event[1], event[2], event[3], event[4])
        elif kind == "pose":
            bad = run.pose(event[1], event[2], event[3], event[4])
        elif kind == "lost":
            if run.muscle:
                run.muscle_torque("fresh", event[1], "lost")
        elif kind in ("wait", "stall"):
            run.advance(event[1])
        elif kind == "idle":
            run.idle(event[1])
        elif kind == "hold":  # healthy inputs for a while: the command can reach its limits
            for _ in range(event[3]):
                run.envelope("fresh", event[1])
                run.pose("fresh", "before", event[2])
                run.advance(PERIOD)
        elif kind == "burst":  # a burst of 2-s-old messages (a replayed backlog)
            for _ in range(event[1]):
                bad = run.envelope("stale", (2.0, 0.0, 2.0)) or bad
                bad = run.pose("stale", "before", 0.9) or bad
        elif kind == "enable":
            ok, message = run.c.enable(event[1])
            if stopped:
                assert run.c.safety.state == STOPPED and (not event[1] or not ok), message
        elif kind == "stop":
            run.c.stop()
            stopped = True
        elif kind == "reset":
            run.c.reset()
            assert run.c.safety.state == DISABLED
            stopped = False
        after = run.c.safety.state
        # Nothing enables but an enable request, and that only on fresh inputs; nothing leaves
        # STOPPED but a reset.
        if after == ENABLED and before != ENABLED:
            assert event == ("enable", True), event
            run.check_not_stale()
        if stopped:
            assert after == STOPPED, event
        # A bad input while enabled faults at once (the command it triggers is already 0-bound).
        if bad and before == ENABLED:
            assert after == FAULT, (event, run.c.reason())
            if bad in ("stale", "future"):  # named for what it is
                assert bad.replace("future", "in the future") in run.c.reason(), run.c.reason()
        run.advance(0.0)
    # Left alone, everything ramps to 0 and nothing enables by itself.
    run.advance(0.5)
    assert run.c.safety.state != ENABLED
    for _ in range(100):
        run.advance(PERIOD)
    assert run.c.limiter.command == [0.0, 0.0]


@pytest.mark.parametrize("source", SOURCES)
@PROPERTY
@given(frames=st.lists(st.tuples(VALUES, st.floats(-1.0, 1.0),
                                 st.sampled_from(["before", "after"]), st.floats(0.0, 0.04),
                                 st.floats(0.0, 0.012), st.integers(1, 4)),
                       min_size=20, max_size=150))
def test_healthy_inputs_never_fault_and_the_command_follows_the_law(source, frames):
    """Late but in-bound inputs, quality before or after its pose (and its muscle torque),
    late timers: no fault."""
    run = Run(source)
    healthy_start(run)
    ok, message = run.c.enable(True)
    assert ok, message
    for values, q0, order, delay, wait, count in frames:
        run.envelope("fresh", values, count, delay)
        run.pose("fresh", order, q0, delay)
        run.advance(wait)
        assert run.c.safety.state == ENABLED, run.c.reason()
    # Held long enough, the command reaches the law's target within the limits.
    values, q0 = frames[-1][0], frames[-1][1]
    for _ in range(60):
        run.envelope("fresh", values)
        run.pose("fresh", "before", q0)
        run.advance(PERIOD)
    a, b, c = values
    if run.muscle:
        elbow = 4.0 * (a - b) + 2.0 * q0
    else:
        elbow = 4.0 * math.copysign(max(abs(a - b) - 0.05, 0.0), a - b) + 2.0 * q0
    expected = [max(-3.0, min(3.0, elbow)), max(-0.5, min(0.5, c))]
    assert run.c.limiter.command == pytest.approx(expected, abs=1e-9)


BAD_INPUTS = st.one_of(
    st.tuples(st.just("envelope"), st.sampled_from(["stale", "future", "gap", "back",
                                                    "malformed", "nan", "inf", "huge"])),
    st.tuples(st.just("pose"), st.sampled_from(["stale", "future", "nan", "flagged"]),
              st.sampled_from(["before", "after"])))


@pytest.mark.parametrize("source", SOURCES)
@PROPERTY
@given(prefix=st.lists(st.tuples(VALUES, st.floats(-1.0, 1.0), st.floats(0.0, 0.012)),
                       max_size=30),
       bad=BAD_INPUTS, values=VALUES, count=st.integers(1, 4), q0=st.floats(-1.0, 1.0))
def test_any_bad_input_while_enabled_faults_at_once(source, prefix, bad, values, count, q0):
    """Whatever the healthy history, one bad input of any kind faults with that very input,
    named (a stale or future one says so); the command it triggers already ramps down."""
    run = Run(source)
    if run.muscle and bad == ("envelope", "huge"):
        bad = ("envelope", "nan")  # a large muscle torque is clamped, not a fault
    healthy_start(run)
    assert run.c.enable(True)[0]
    for activations, angle, wait in prefix:
        run.envelope("fresh", activations)
        run.pose("fresh", "before", angle)
        run.advance(wait)
    assert run.c.safety.state == ENABLED, run.c.reason()
    command = list(run.c.limiter.command)
    if bad[0] == "envelope":
        run.envelope(bad[1], values, count)
    else:
        run.pose(bad[1], bad[2], q0)
    assert run.c.safety.state == FAULT, (bad, run.c.reason())
    if bad[1] in ("stale", "future"):
        assert bad[1].replace("future", "in the future") in run.c.reason(), run.c.reason()
    assert all(abs(a) <= abs(b) + EPS for a, b in zip(run.c.limiter.command, command))


def test_a_burst_of_old_messages_faults_at_once_and_ramps_down():
    run = commanding_run()
    assert run.c.limiter.command == pytest.approx([3.0, 0.5])
    run.envelope("stale", (1.0, 0.0, 1.0))
    assert run.c.safety.state == FAULT
    assert run.c.reason().startswith("stale envelope: stamped 2000 ms ago (max_input_age 100")
    for _ in range(40):
        run.envelope("fresh", (1.0, 0.0, 1.0))
        run.pose("fresh", "before", 0.5)
        run.advance(PERIOD)
    assert run.c.safety.state == FAULT and run.c.limiter.command == [0.0, 0.0]


@pytest.mark.parametrize("kind, reason", [
    ("future", "envelope stamped 500 ms in the future"),
    ("gap", "gap in the envelope"),
    ("back", "gap in the envelope"),
    ("nan", "non-finite value (NaN or inf) in the envelope"),
    ("malformed", "malformed envelope chunk"),
])
def test_each_bad_envelope_names_its_fault(kind, reason):
    run = Run()
    healthy_start(run)
    assert run.c.enable(True)[0]
    run.advance(0.0)
    run.envelope("fresh", (0.5, 0.1, 0.2))
    run.envelope(kind, (0.5, 0.1, 0.2))
    assert run.c.safety.state == FAULT and reason in run.c.reason(), run.c.reason()


def test_a_refused_input_is_named_when_enabling_after_it_went_stale():
    # Volts without an MVC are refused, so the envelope also goes stale: the refusal is the
    # cause, and stays in the answer after the timeout (it was lost behind "stale" before).
    run = Run(envelope_timeout=0.3)
    healthy_start(run)
    run.c.on_envelope(run.fresh_stamp(0.0), run.index, 1, 100.0, CHANNELS, "V", [0.5, 0.1, 0.2])
    run.idle(1.0)
    ok, message = run.c.enable(True)
    assert not ok and "stale envelope" in message, message
    assert "refusing to assist on volts" in message, message


def test_non_finite_gravity_and_flagged_quality_fault():
    run = Run()
    healthy_start(run)
    assert run.c.enable(True)[0]
    run.pose("nan", "before", 0.0)
    assert run.c.safety.state == FAULT and "non-finite gravity torque" in run.c.reason()
    healthy_start(run)
    assert run.c.enable(True)[0]
    run.pose("flagged", "after", 0.0)
    assert run.c.safety.state == FAULT
    assert run.c.reason() == "IK re-initialised at frame 1: loop restart"


def test_inputs_that_stop_coming_fault_within_one_period():
    run = Run()
    healthy_start(run)
    assert run.c.enable(True)[0]
    newest = run.good["envelope"][0]
    while run.c.safety.state == ENABLED:
        run.advance(PERIOD / 4)
        run.pose("fresh", "before", 0.4)
    assert run.clock.now - newest <= run.s.max_input_age + PERIOD + EPS
    assert "stale envelope" in run.c.reason()


def test_stop_latches_until_reset_and_enable_cannot_override_it():
    run = Run()
    healthy_start(run)
    assert run.c.enable(True)[0]
    ok, message = run.c.stop()
    assert ok and run.c.safety.state == STOPPED
    ok, message = run.c.enable(True)
    assert not ok and "~/reset" in message and run.c.safety.state == STOPPED
    run.c.enable(False)
    assert run.c.safety.state == STOPPED
    assert run.c.reset()[0] and run.c.safety.state == DISABLED
    healthy_start(run)
    assert run.c.enable(True)[0]


def test_a_command_left_by_a_crashed_process_is_ramped_down_not_dropped():
    clock = FakeClock()
    s = AssistSettings(**SETTINGS)
    c = AssistController(s, AssistLaw(s.joint_laws(), {}, 3.0), FakePose(), clock,
                         quality=True, initial_command=[2.5, math.nan])
    assert c.safety.state == DISABLED and c.limiter.command == [2.5, 0.0]
    assert c.shutdown_budget() == pytest.approx(2.5 / 20.0 + PERIOD)
    # Held until a subscriber is matched (else the ramp would go out unheard).
    for _ in range(5):
        clock.now += PERIOD
        assert c.on_timer().values == [2.5, 0.0]
    c.heard()
    trace = []
    for _ in range(30):
        clock.now += PERIOD
        trace.append(c.on_timer().values[0])
    assert trace[0] == pytest.approx(2.3) and trace[-1] == 0.0
    assert all(b <= a for a, b in zip(trace, trace[1:]))


def test_a_resumed_command_nobody_hears_ramps_down_after_a_while():
    from biosig_ros.robot.assist_controller import RESUME_HOLD_S

    clock = FakeClock()
    s = AssistSettings(**SETTINGS)
    c = AssistController(s, AssistLaw(s.joint_laws(), {}, 3.0), FakePose(), clock,
                         quality=True, initial_command=[-1.0, 0.0])
    values = []
    while not c.at_zero():
        clock.now += PERIOD
        values.append(c.on_timer().values[0])
    held = [v for v in values if v == -1.0]
    assert RESUME_HOLD_S <= len(held) * PERIOD <= RESUME_HOLD_S + 3 * PERIOD
    assert all(abs(b - a) <= 20.0 * PERIOD + EPS for a, b in zip(values, values[1:]))


def test_the_shutdown_ramp_takes_its_budget_and_never_steps():
    run = commanding_run()
    budget = run.c.shutdown_budget()
    assert budget == pytest.approx(3.0 / 20.0 + PERIOD)
    assert run.c.worst_shutdown_budget() == pytest.approx(max(3.0 / 20.0, 0.5 / 10.0) + PERIOD)
    start = run.clock.now
    while not run.c.at_zero():
        run.clock.now += PERIOD
        run.check(run.c.shutdown_step())
    assert run.clock.now - start <= budget + EPS


# --- the muscle torque source ---------------------------------------------------------------

@pytest.mark.parametrize("kind, order, reason", [
    ("stale", "before", "stale muscle torque: stamped 2000 ms ago (max_input_age 100 ms)"),
    ("future", "after", "muscle torque stamped 500 ms in the future"),
    ("nan", "before", "non-finite muscle torque"),
    ("inf", "after", "non-finite muscle torque"),
    ("gap", "after", "muscle torque flagged by torque/quality: saturated muscle activation"),
    ("back", "before", "muscle torque out of order"),
    ("malformed", "before", "muscle torque with 3 names and 2 efforts"),
])
def test_each_bad_muscle_torque_names_its_fault(kind, order, reason):
    run = Run("muscle_torque")
    healthy_start(run)
    assert run.c.enable(True)[0]
    run.muscle_torque("fresh", (0.5, 0.1, 0.2), "before")
    assert run.c.safety.state == ENABLED
    run.muscle_torque(kind, (0.5, 0.1, 0.2), order)
    assert run.c.safety.state == FAULT and reason in run.c.reason(), run.c.reason()


def test_a_muscle_torque_waits_for_its_quality_and_stale_ones_fault_within_one_period():
    run = Run("muscle_torque")
    healthy_start(run)
    assert run.c.enable(True)[0]
    for _ in range(20):
        run.muscle_torque("fresh", (1.0, 0.0, 1.0), "after")
        run.pose("fresh", "before", 0.0)
        run.advance(PERIOD)
    assert run.c.limiter.command == pytest.approx([3.0, 0.5])
    # Frames whose quality never comes are not used: the newest usable one ages into a fault.
    newest = run.good["envelope"][0]
    while run.c.safety.state == ENABLED:
        run.muscle_torque("fresh", (1.0, 0.0, 1.0), "lost")
        run.pose("fresh", "before", 0.0)
        run.advance(PERIOD / 4)
    assert run.clock.now - newest <= run.s.max_input_age + PERIOD + EPS
    assert "stale muscle torque" in run.c.reason()


def test_a_muscle_torque_pairs_with_the_quality_of_its_own_frame_only():
    c, clock = make("muscle_torque", gravity_dofs=[""], support_fraction=0.0)
    stamp = clock.now - 0.02
    c.on_torque_quality(stamp, "")
    assert c.on_muscle_torque(stamp - 0.01, DOFS, [0.5, 0.0, 0.1]) is None  # waits for its own
    command = c.on_muscle_torque(stamp, DOFS, [0.25, 0.0, 0.1])
    assert command is not None and c.emg == pytest.approx([1.0, 0.1])


def test_the_emg_law_source_ignores_muscle_torque_and_the_muscle_source_the_envelope():
    c, clock = make()
    assert c.on_muscle_torque(clock.now, DOFS, [1.0, 0.0, 0.0]) is None
    assert c.on_torque_quality(clock.now, "") is None
    m, clock = make("muscle_torque")
    assert m.on_envelope(clock.now, 0, 1, 100.0, CHANNELS, "", [0.5, 0.0, 0.5]) is None
    assert "no muscle torque received yet" in m.health_problem()
    m.on_torque_quality(clock.now, "")
    m.on_muscle_torque(clock.now, ["elsewhere"], [1.0])
    assert "muscle torque has no DoF(s) d0, d2" in m.input_problems()
