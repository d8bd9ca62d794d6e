"""assist_node and sim_exo_node in their own processes, fed from this one: disabled -> zero
command; enabled -> the activation difference plus gravity support within the limits; every
fault ramps the command to zero at the rate limit and reports ERROR until a fresh enable; a
burst of 2-s-old messages faults "stale" with the very first of them; ~/stop holds until
~/reset; a process killed with SIGKILL and started again ramps down from the command it left
(no step); hostile inputs never push the command beyond its limits; clear start-up errors.
No fault the test did not cause is tolerated."""
import math
import re
import signal
import tempfile
import threading
import time

from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from biosig_ros.msg import AssistState, SignalChunk
from biosig_ros.processing.ik_model import load_model
from biosig_ros.robot.assist_law import deadband
from biosig_ros.ros.conversions import time_to_seconds
from biosig_ros.ros.ik_quality import quality_type
from biosig_ros.ros.qos import output_qos

from ros_harness import NodeProcess, RosProbe, shipped_parameters, stopped_after
from test_assist_core import ELBOW, POSE, WU

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ARM = [d for d in load_model(WU).dof_names if not d.startswith("thorax")]
LIMITS = np.array([3.0, 0.5])
RATES = np.array([20.0, 10.0])
RATE_HZ = 100.0
MAX_STEP = RATES * 2.0 / RATE_HZ  # the limiter's dt is capped at two timer periods
PARAMS = dict(
    joints=["elbow", "wrist"], agonists=["BIC", "FCR"], antagonists=["TRI", ""],
    gains=[4.0, 1.0], deadbands=[0.05, 0.0], torque_limits=LIMITS.tolist(),
    rate_limits=RATES.tolist(), max_activation=3.0, mvc_channels=["BIC", "TRI"],
    mvc=[0.001, 0.002], support_fraction=0.5, gravity_dofs=[ELBOW, ""],
    gravity_signs=[1.0, 1.0], model_path=WU, watch_dofs=ARM, max_pose_step=0.35,
    envelope_topic="emg/envelope", joint_states_topic="ik/joint_states",
    command_topic="exo/commands", state_topic="assist/state", rate=RATE_HZ,
    # This shared machine (load average up to 27 on 2 cores) can hold a process for a second;
    # the node's defaults are for a dedicated one (below 2 s: the burst test's messages are
    # 2 s old). The memory file is this run's.
    envelope_timeout=1.5, pose_timeout=1.5, max_input_age=1.5, command_memory=str(Path(tempfile.mkdtemp()) / "assist.command"))


def gravity(q) -> float:
    model = load_model(WU)
    zero = np.zeros(model.nb_q)
    return float(model.model.InverseDynamics(np.asarray(q, dtype=float), zero, zero)
                 .to_array()[model.dof_names.index(ELBOW)])


def expected_command(bic, tri, fcr, q=POSE) -> np.ndarray:
    emg = np.array([4.0 * deadband(bic - tri, 0.05), 1.0 * fcr])
    return np.clip(emg + np.array([0.5 * gravity(q), 0.0]), -LIMITS, LIMITS)


class Feeder:
    """Publishes the envelope (1 sample per chunk) and the pose at 100 Hz from a thread; the
    test changes what it sends, or injects one bad message."""

    def __init__(self, probe: RosProbe):
        # Reliable, like the package's nodes (assist subscribes reliable only).
        # A deep history: a starved assist process catches up instead of losing messages.
        self._envelope = probe.publisher(SignalChunk, "/emg/envelope", output_qos(500))
        self._pose = probe.publisher(JointState, "/ik/joint_states", output_qos(500))
        self._quality = (probe.publisher(quality_type(), "/ik/quality", output_qos(500))
                         if quality_type() else None)
        self.frames = 0
        self.names = list(load_model(WU).dof_names)
        self.lock = threading.Lock()
        self.reset()
        self.index = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset(self, **values):
        with self.lock:
            self.values = {"BIC": 0.0, "TRI": 0.0, "OTHER": 0.5, "FCR": 0.0, **values}
            self.unit = ""
            self.q = POSE.copy()
            self.send_envelope = self.send_pose = True
            self.gap = 0
            self.nan_envelope = self.nan_pose = False
            self.quality = None  # fields of the next pose's IkQuality (None: a clean one)
            self.age = 0.0  # s the stamps are set back (a replayed backlog)
            self.burst = 0  # frames to send at once

    def set(self, **changes):
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def _run(self):
        next_time = time.monotonic()
        while not self._stop.is_set():
            with self.lock:
                for _ in range(max(1, self.burst)):
                    self._publish()
                self.burst = self.age = 0
            next_time += 0.01
            time.sleep(max(0.0, next_time - time.monotonic()))

    def _publish(self):
        stamp = time.time() - self.age
        if self.send_envelope:
            msg = SignalChunk()
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
            msg.channel_names = list(self.values)
            msg.unit = self.unit
            msg.sample_rate = 100.0
            self.index += self.gap
            self.gap = 0
            msg.first_sample_index = self.index
            msg.sample_count = 1
            data = [float(v) for v in self.values.values()]
            if self.nan_envelope:
                data[0], self.nan_envelope = math.nan, False
            msg.data = data
            self._envelope.publish(msg)
            self.index += 1
        if self.send_pose:
            msg = JointState()
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
            msg.name = self.names
            q = [float(v) for v in self.q]
            if self.nan_pose:
                q[-1], self.nan_pose = math.nan, False
            msg.position = q
            quality = None
            if self._quality is not None:  # like IK: one IkQuality per pose, same stamp
                quality = quality_type()(header=msg.header, frame_number=self.frames)
                for key, value in (self.quality or {}).items():
                    setattr(quality, key, value)
                self.quality = None
            # Before its pose, as IK publishes it; after it every other frame (the order in
            # which they arrive is not guaranteed across two topics).
            after = self.frames % 2 == 1
            if quality is not None and not after:
                self._quality.publish(quality)
            self._pose.publish(msg)
            if quality is not None and after:
                self._quality.publish(quality)
            self.frames += 1

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


class Loop:
    """The probe, the feeder, assist_node and sim_exo_node, and what they publish."""

    def __init__(self):
        self.probe = RosProbe()
        # Reliable: every command is seen (a best-effort probe on a loaded machine misses some,
        # which would look like steps above the rate limit).
        self.commands = self.probe.subscribe(Float64MultiArray, "/exo/commands",
                                             output_qos(1000))
        self.states = self.probe.subscribe(AssistState, "/assist/state", output_qos(1000))
        self.exo = self.probe.subscribe(JointState, "/exo/joint_states")
        self.diagnostics = self.probe.subscribe(DiagnosticArray, "/diagnostics")
        self.assist = NodeProcess("biosig_ros.nodes.assist_node", "assist", PARAMS)
        self.sim = NodeProcess("biosig_ros.nodes.sim_exo_node", "sim_exo", shipped_parameters(
            "sim_exo.yaml", command_length=2, mass=0.0))
        for node in (self.assist, self.sim):
            assert node.wait_for_output("ready:", timeout=60), node.output()
        self.feeder = Feeder(self.probe)
        self.unexpected: list[str] = []
        self.starved: list[str] = []  # faults a starved machine causes (see settle)
        self.answered_at = 0.0  # when the last enable call was answered (probe's clock)
        assert self.probe.wait_until(lambda: len(self.exo) > 10 and len(self.states) > 10
                                     and self.state().reason == "", timeout=30), (
            self.assist.output())

    def state(self) -> AssistState:
        return self.states[-1][1]

    def brief(self) -> str:
        """The newest state in one line (a failure message pytest does not cut)."""
        m = self.state()
        return (f"{m.state} ({m.trigger}) reason={m.reason!r} command={list(m.command)} "
                f"target={list(m.target)} starved={self.starved} unexpected={self.unexpected}")

    def since(self, t0: float, which=None) -> list:
        return [msg for t, msg in list(self.commands if which is None else which) if t >= t0]

    def enable(self, on: bool = True):
        response = self.probe.call(SetBool, "/assist/enable", SetBool.Request(data=on))
        self.answered_at = time.time()
        return response

    def assist_status(self, since: float):
        statuses = [status for t, array in list(self.diagnostics) if t >= since
                    for status in array.status if status.name == "assist"]
        return statuses[-1] if statuses else None

    def settle(self, expected: np.ndarray, timeout: float = 30.0) -> bool:
        """Wait until enabled with this command. A fault the test did not cause is cleared by
        enabling again, and noted in self.unexpected (which fails the test), unless a loaded
        machine explains it: the node starved past max_input_age (stale inputs) or past its
        reliable queue (a gap), which it must fault on (noted in self.starved)."""
        deadline = time.monotonic() + timeout
        enabled_seen = False  # states from before the enable call may still be arriving
        while time.monotonic() < deadline:
            received, state = self.states[-1]
            enabled_seen |= received > self.answered_at and state.state == "enabled"
            if state.state == "enabled" and np.allclose(state.command, expected, atol=1e-9):
                return True
            # A fault is new once seen enabled since, or stamped by the timer after the answer
            # (a starved feeder can fault the node before an "enabled" state reaches us).
            if state.state == "fault" and (enabled_seen or (
                    state.trigger == "timer"
                    and time_to_seconds(state.header.stamp) > self.answered_at)):
                self.note_fault(state.reason)
                if not self.enable().success:
                    time.sleep(0.2)  # inputs not ready yet: asked again
                enabled_seen = False
            time.sleep(0.02)
        return False

    def ramp_from_fault(self, t0: float) -> tuple[int, np.ndarray]:
        """The commands of the fault states since t0 (each state carries the command it went
        with): the index of the first zero one, and |command| up to it."""
        faulted = np.array([list(m.command) for t, m in list(self.states)
                            if t >= t0 and m.state == "fault"])
        first_zero = int(np.argmax(~faulted.any(axis=1)))
        return first_zero, np.abs(faulted[:first_zero + 1])

    def note_fault(self, reason: str) -> None:
        """A fault the test did not cause: in self.starved when a starved machine explains it
        (STARVED), else in self.unexpected."""
        (self.starved if STARVED.search(reason) else self.unexpected).append(reason)

    def enable_when_ready(self, timeout: float = 20.0, service: str = "/assist/enable"):
        """Enable, again while the inputs are not ready (just restored, or this loaded machine
        starved the feeder past a timeout); the first successful answer, or None."""
        answers = []

        def answered():
            try:  # enabling is idempotent: a response lost while DDS matches the service's
                # reply writer (a just-started node) is asked again, not a failure
                response = self.probe.call(SetBool, service, SetBool.Request(data=True),
                                           timeout=5.0)
            except TimeoutError:
                return False
            self.answered_at = time.time()
            answers.append(response)
            return response.success
        return answers[-1] if self.probe.wait_until(answered, timeout, interval=0.2) else None

    def enabled_until(self, holds, service: str, timeout: float = 60.0) -> bool:
        """Enable (again whenever a starved input faulted it) until holds() is true."""
        deadline = time.monotonic() + timeout
        while not holds() and time.monotonic() < deadline:
            assert self.enable_when_ready(service=service)
            self.probe.wait_until(holds, timeout=3)
        return holds()

    def states_while_healthy(self, since: float, healthy_for: float = 0.5) -> list:
        """The inputs healthy since `since` (the test's clock): wait (event-driven) for a state
        answering an input captured healthy_for seconds later; every state received
        meanwhile."""
        answered = lambda: any(  # noqa: E731
            m.trigger != "timer" and time_to_seconds(m.header.stamp) >= since + healthy_for
            for t, m in list(self.states)[-50:])
        assert self.probe.wait_until(answered), self.state()
        return [m for t, m in list(self.states) if t >= since]

    def close(self):
        self.feeder.close()
        for node in (self.assist, self.sim):
            node.stop()
        self.probe.close()


# The faults a starved node raises by design (robot/assist_controller.py): an input older
# than max_input_age, or a gap where its reliable queue (max_input_age x 100 Hz) overflowed.
STARVED = re.compile(r"\bstale \w|\bgap in the ")


@pytest.fixture(scope="module")
def loop():
    running = Loop()
    yield running
    running.close()


@pytest.fixture
def fresh(loop):
    """Every test starts disabled, with healthy inputs, and ends without a fault it did not
    cause."""
    loop.enable(False)
    loop.feeder.reset()
    assert loop.probe.wait_until(lambda: loop.state().state == "disabled"
                                 and loop.state().reason == "" and not any(loop.state().command))
    loop.unexpected.clear()
    loop.starved.clear()
    yield loop
    assert not loop.unexpected, (f"faults the test did not cause: {loop.unexpected} (and "
                                 f"explained by a starved machine: {loop.starved})")


def within_limits(commands) -> None:
    values = np.array([list(c.data) for c in commands])
    assert values.shape[1] == 2 and np.isfinite(values).all()
    assert (np.abs(values) <= LIMITS + 1e-12).all()


BAD_PARAMETERS = {
    "parameter 'gains' has 3 values for 2 joint(s)": dict(gains=[1.0, 2.0, 3.0]),
    "parameter 'gravity_dofs': elbow_flexion not": dict(gravity_dofs=["elbow_flexion", ""]),
    "parameter 'rate_limits' entry 0 must be > 0": dict(rate_limits=[0.0, 1.0]),
    "mvc_file: no such file": dict(mvc_file="no/such/mvc.yaml"),
    "parameter 'rate'": dict(rate=0.0),
}


@pytest.fixture(scope="module")
def refused_starts():
    """assist_node started with each bad parameter set, all at once (each stops at start-up,
    alone), by the message it must print. First in the module: before the loop runs."""
    yield from stopped_after({
        message: NodeProcess("biosig_ros.nodes.assist_node", f"assist_bad_{index}",
                             {**PARAMS, **overrides})
        for index, (message, overrides) in enumerate(BAD_PARAMETERS.items())})


@pytest.mark.parametrize("message", list(BAD_PARAMETERS))
def test_bad_parameters_stop_the_node_with_one_line(refused_starts, message):
    node = refused_starts[message]
    status = node.process.wait(timeout=60)
    output = node.output()
    assert status == 2, output
    assert message in output and "Traceback" not in output, output


def test_disabled_commands_are_zero_at_the_timer_rate(fresh):
    fresh.feeder.set(values={"BIC": 1.0, "TRI": 0.0, "FCR": 0.4})
    fresh.feeder.set(send_envelope=False, send_pose=False)  # the timer alone still publishes
    t0 = time.time()
    time.sleep(PARAMS["max_input_age"] + 0.5)  # the inputs go stale
    commands = fresh.since(t0)
    assert len(commands) >= 20, "the node must keep publishing without input"
    assert all(list(c.data) == [0.0, 0.0] for c in commands)
    exo = [m for t, m in list(fresh.exo) if t >= t0 + 0.5]
    assert exo and all(m.effort[0] == 0.0 for m in exo)
    # Stale inputs: enabling is refused, with the reason.
    response = fresh.enable()
    assert not response.success and "stale" in response.message, response.message
    assert fresh.state().state == "disabled"


def test_enabled_command_follows_activation_difference_and_gravity_within_limits(fresh):
    assert abs(gravity(POSE)) > 0.1
    assert fresh.enable_when_ready(), fresh.state()
    t0 = time.time()
    for bic, tri, fcr in [(0.5, 0.1, 0.2), (0.1, 0.6, 0.0), (0.3, 0.32, 0.3), (2.9, 0.0, 2.9),
                          (0.0, 2.9, 0.0)]:
        fresh.feeder.set(values={"BIC": bic, "TRI": tri, "FCR": fcr})
        expected = expected_command(bic, tri, fcr)
        assert fresh.settle(expected), (bic, tri, fcr, fresh.state())
        state = fresh.state()
        assert state.agonist_activation == pytest.approx([bic, fcr])
        assert state.antagonist_activation == pytest.approx([tri, 0.0])
        assert state.gravity_torque == pytest.approx([0.5 * gravity(POSE), 0.0])
    # The limits held over the whole sequence, and so did the rate limit.
    commands = fresh.since(t0)
    within_limits(commands)
    values = np.array([list(c.data) for c in commands])
    assert (np.abs(np.diff(values, axis=0)) <= MAX_STEP + 1e-9).all()
    assert np.abs(values).max(axis=0) == pytest.approx(LIMITS)  # clamped, reached
    # The simulated exo applies the command it receives.
    last = expected_command(0.0, 2.9, 0.0)
    assert last[0] == -LIMITS[0]
    assert fresh.probe.wait_until(lambda: fresh.settle(last, timeout=5)
                                  and fresh.exo[-1][1].effort[0] == pytest.approx(last[0]),
                                  timeout=30)


def test_a_new_pose_changes_the_gravity_support(fresh):
    q = POSE.copy()
    assert fresh.enable_when_ready()
    for elbow in (0.8, 1.0, 1.2):  # small steps: no pose-jump fault
        q[-1] = elbow
        fresh.feeder.set(q=q.copy())
        assert fresh.settle(expected_command(0.0, 0.0, 0.0, q)), fresh.brief()
    assert gravity(q) != pytest.approx(gravity(POSE), abs=1e-3)


FAULTS = {
    "stale envelope": (dict(send_envelope=False), "stale envelope"),
    "stale joint states": (dict(send_pose=False), "stale joint states"),
    "NaN envelope": (dict(nan_envelope=True), "non-finite value (NaN or inf) in the envelope"),
    "NaN pose": (dict(nan_pose=True), "non-finite value (NaN or inf) in the joint states"),
    "gap": (dict(gap=3), "gap in the envelope"),
    "re-initialisation": ("jump", "pose jumped: humerus_shoulder_ele_RotY"),
    "pose out of range": ("range", "pose out of range: ulna_elbow_flexion_RotZ"),
    "huge activation": (dict(values={"BIC": 1e9, "TRI": 0.0, "FCR": 1e9}), "above max_activation"),
    "IK quality: re-initialised": (
        dict(quality=dict(reinitialised=True, reinitialisation_reason="diverged")),
        "IK re-initialised at frame"),
    "IK quality: out of range": (
        dict(quality=dict(dofs_out_of_range=["thorax_RotX", "humerus_shoulder_ele_RotY"])),
        "IK: DoF(s) out of the model's range: humerus_shoulder_ele_RotY"),
    "IK quality: discontinuity": (
        dict(quality=dict(discontinuity=True, discontinuity_reason="humerus stepped",
                          dofs_stepped=["humerus_shoulder_ele_RotY"])),
        "IK pose discontinuous at frame"),
    "IK quality: under-determined": (
        dict(quality=dict(underdetermined_segments=["thorax"])),
        "IK: segment(s) seen by too few markers to be solved: thorax"),
}
NEEDS_QUALITY = {name for name in FAULTS if name.startswith("IK quality")}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_ramps_to_zero_reports_error_and_latches(fresh, fault):
    if fault in NEEDS_QUALITY and quality_type() is None:
        pytest.skip("biosig_ros/IkQuality is not built here (the IK quality message)")
    change, reason = FAULTS[fault]
    start = {"BIC": 0.6, "TRI": 0.0, "FCR": 0.3}
    before = expected_command(0.6, 0.0, 0.3)
    for _attempt in range(3):
        fresh.feeder.reset(**start)
        assert fresh.enable_when_ready(), fresh.state()
        assert fresh.settle(before), fresh.brief()
        t0 = time.time()
        if change == "jump":
            q = POSE.copy()
            q[list(load_model(WU).dof_names).index("humerus_shoulder_ele_RotY")] += 0.6
            fresh.feeder.set(q=q)
        elif change == "range":
            q = POSE.copy()
            q[-1] = 3.2
            fresh.feeder.set(q=q)
        else:
            fresh.feeder.set(**change)
        assert fresh.probe.wait_until(lambda: fresh.state().state == "fault"
                                      and not any(fresh.state().command), timeout=20), (
            fresh.state(), fresh.assist.output()[-2000:])
        if reason in fresh.state().reason:
            break
        fresh.note_fault(fresh.state().reason)  # another fault came first: again
    assert reason in fresh.state().reason, (fresh.state().reason, fresh.unexpected)
    # The ramp: |command| never grows and moves by at most the rate limit per message.
    ramp = np.array([list(c.data) for c in fresh.since(t0)])
    within_limits(fresh.since(t0))
    steps = np.abs(np.diff(np.vstack([before, ramp]), axis=0))
    assert (steps <= MAX_STEP + 1e-9).all(), steps.max(axis=0)
    # From the fault on, |command| never grows. Until the node sees the fault (later on a
    # loaded machine) the law may still move the command: within the rate limit, checked above.
    first_zero, magnitudes = fresh.ramp_from_fault(t0)
    assert (np.diff(magnitudes, axis=0) <= 1e-12).all(), (
        magnitudes.tolist(), [(m.trigger, m.state, m.reason[:40], list(m.command))
                              for t, m in list(fresh.states) if t >= t0][:first_zero + 20])
    assert first_zero >= 2, "ramped, not dropped (the rate limit applies to the way down too)"
    # ERROR on /diagnostics naming the reason.
    assert fresh.probe.wait_until(lambda: (s := fresh.assist_status(t0)) is not None
                                  and s.level == DiagnosticStatus.ERROR
                                  and reason in s.message, timeout=10)
    # Latched: healthy inputs again do not bring the command back (0.5 s of their stamps)...
    healthy = time.time()
    fresh.feeder.reset(**start)
    latched = fresh.states_while_healthy(healthy)
    assert all(m.state == "fault" and not any(m.command) for m in latched), [
        (m.trigger, m.state, list(m.command)) for m in latched if m.state != "fault"]
    # ...a fresh enable does.
    response = fresh.enable_when_ready()
    assert response and "cleared fault" in response.message, fresh.state()
    assert fresh.settle(before), fresh.brief()
    assert fresh.state().state == "enabled"


def test_a_burst_of_old_messages_faults_stale_at_once_and_ramps_down(fresh):
    """A backlog of envelopes and poses stamped 2 s ago, as a stalled link or a replaying
    bridge would deliver it: the command triggered by the first of them is already a fault's
    (within one period, whatever the machine's load), the command ramps to 0 at the rate limit,
    and healthy inputs afterwards do not bring it back."""
    start = {"BIC": 0.6, "TRI": 0.0, "FCR": 0.3}
    before = expected_command(0.6, 0.0, 0.3)
    fresh.feeder.reset(**start)
    assert fresh.enable_when_ready(), fresh.state()
    assert fresh.settle(before), fresh.brief()
    t0 = time.time()
    fresh.feeder.set(age=2.0, burst=20)
    assert fresh.probe.wait_until(lambda: fresh.state().state == "fault"
                                  and not any(fresh.state().command), timeout=20), fresh.state()
    assert fresh.state().reason.startswith("stale envelope: stamped 2"), fresh.state().reason
    # Every command that answered an old message was already a fault's.
    old = [m for t, m in list(fresh.states) if t >= t0
           and time_to_seconds(m.header.stamp) < t0 - 1.0 and m.trigger != "timer"]
    assert old and all(m.state == "fault" for m in old), [(m.trigger, m.state) for m in old]
    assert "stale" in old[0].reason
    ramp = np.array([list(c.data) for c in fresh.since(t0)])
    steps = np.abs(np.diff(np.vstack([before, ramp]), axis=0))
    assert (steps <= MAX_STEP + 1e-9).all(), steps.max(axis=0)
    first_zero, magnitudes = fresh.ramp_from_fault(t0)
    assert first_zero >= 2 and (np.diff(magnitudes, axis=0) <= 1e-12).all(), (
        magnitudes.tolist())
    # Healthy inputs again (0.5 s of their stamps): still latched, the command stays 0.
    latched = fresh.states_while_healthy(time.time())
    assert all(m.state == "fault" and not any(m.command) for m in latched)
    after = [m.state for t, m in list(fresh.states) if t >= t0]
    assert "enabled" not in after[after.index("fault"):], "nothing re-enables by itself"


def test_stop_holds_until_reset_and_enable_cannot_override_it(fresh):
    before = expected_command(0.6, 0.0, 0.3)
    fresh.feeder.reset(BIC=0.6, TRI=0.0, FCR=0.3)
    assert fresh.enable_when_ready(), fresh.state()
    assert fresh.settle(before), fresh.brief()
    t0 = time.time()
    answer = fresh.probe.call(Trigger, "/assist/stop", Trigger.Request())
    assert answer.success and "only ~/reset" in answer.message
    assert fresh.probe.wait_until(lambda: fresh.state().state == "stopped"
                                  and not any(fresh.state().command))
    steps = np.abs(np.diff(np.vstack([before, [list(c.data) for c in fresh.since(t0)]]), axis=0))
    assert (steps <= MAX_STEP + 1e-9).all()
    response = fresh.enable()
    assert not response.success and "~/reset" in response.message
    time.sleep(0.3)
    assert fresh.state().state == "stopped" and not any(fresh.state().command)
    assert fresh.probe.wait_until(lambda: (s := fresh.assist_status(t0)) is not None
                                  and "STOPPED" in s.message)
    answer = fresh.probe.call(Trigger, "/assist/reset", Trigger.Request())
    assert answer.success and fresh.probe.wait_until(lambda: fresh.state().state == "disabled")
    assert fresh.enable_when_ready() and fresh.settle(before)


def test_a_killed_process_started_again_ramps_down_from_the_command_it_left(loop, tmp_path):
    """SIGKILL: the command topic goes silent (a forward command controller holds the last
    value); the process started again (as the graph's supervisor or launch's respawn does)
    starts DISABLED from that value, ramping it to 0 at the rate limit: no step."""
    commands = loop.probe.subscribe(Float64MultiArray, "/crash_test/commands", output_qos(1000))
    params = {**PARAMS, "command_topic": "crash_test/commands", "state_topic": "",
              "command_memory": str(tmp_path / "crash.command")}
    expected = expected_command(0.6, 0.0, 0.3)
    node = NodeProcess("biosig_ros.nodes.assist_node", "assist_crash", params)
    try:
        assert node.wait_for_output("ready:", timeout=60), node.output()
        loop.feeder.reset(BIC=0.6, TRI=0.0, FCR=0.3)
        holds = lambda: commands and np.allclose(commands[-1][1].data, expected)  # noqa: E731
        assert loop.enabled_until(holds, "/assist_crash/enable"), commands[-1][1].data
        killed = time.time()
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
    finally:
        node.stop()
    time.sleep(0.5)
    # Silent once killed: nothing but the held value (messages still in flight) arrives.
    held = [list(c.data) for t, c in list(commands) if t >= killed]
    assert not held or np.allclose(held, expected), held
    again = NodeProcess("biosig_ros.nodes.assist_node", "assist_crash", params)
    try:
        assert again.wait_for_output("ready:", timeout=60), again.output()
        assert "left the command" in again.output() and "ramping it to 0" in again.output()
        assert loop.probe.wait_until(lambda: [c for t, c in list(commands) if t > killed]
                                     and not any(commands[-1][1].data), timeout=30)
        after = np.array([list(c.data) for t, c in list(commands) if t > killed])
        steps = np.abs(np.diff(np.vstack([expected, after]), axis=0))
        assert (steps <= MAX_STEP + 1e-9).all(), (steps.max(axis=0), after[:3])
        assert len(after) >= 3 and (np.diff(np.abs(after), axis=0) <= 1e-12).all()
        # Started disabled: healthy inputs do not bring the command back.
        time.sleep(0.5)
        assert not any(commands[-1][1].data)
    finally:
        assert again.stop() == 0, again.output()


def test_ik_quality_out_of_range_on_an_unwatched_dof_does_not_fault(fresh):
    if quality_type() is None:
        pytest.skip("biosig_ros/IkQuality is not built here (the IK quality message)")
    fresh.feeder.set(values={"BIC": 0.6, "TRI": 0.0, "FCR": 0.3})
    assert fresh.enable_when_ready()
    assert fresh.settle(expected_command(0.6, 0.0, 0.3))
    for _ in range(10):
        fresh.feeder.set(quality=dict(dofs_out_of_range=["thorax_RotX", "thorax_RotZ"]))
        time.sleep(0.05)
    assert fresh.state().state == "enabled", fresh.state().reason


def test_volts_need_an_mvc_for_every_channel_used(fresh):
    # BIC and TRI have an MVC parameter, FCR (the wrist's agonist) has none.
    fresh.feeder.set(unit="V", values={"BIC": 0.0006, "TRI": 0.0002, "FCR": 0.0001})
    t0 = time.time()
    assert fresh.probe.wait_until(lambda: "no MVC is given for FCR" in fresh.state().reason)
    # (refused, the envelope also goes stale after envelope_timeout: both are named)
    response = fresh.enable()
    assert not response.success and "refusing to assist on volts" in response.message, (
        response.message)
    status = None
    assert fresh.probe.wait_until(lambda: (s := fresh.assist_status(t0)) is not None
                                  and "no MVC is given for FCR" in s.message)
    status = fresh.assist_status(t0)
    assert status.level == DiagnosticStatus.WARN
    assert not any(c.data[0] or c.data[1] for c in fresh.since(t0))
    # Fractions of MVC (normalised upstream): accepted.
    fresh.feeder.set(unit="", values={"BIC": 0.6, "TRI": 0.1, "FCR": 0.0})
    assert fresh.enable_when_ready()


def test_sim_exo_drops_commands_of_the_wrong_length_like_the_controller(loop):
    publisher = loop.probe.publisher(Float64MultiArray, "/sim_only/commands")
    sim = NodeProcess("biosig_ros.nodes.sim_exo_node", "sim_only", shipped_parameters(
        "sim_exo.yaml", command_topic="sim_only/commands", joint_states_topic="sim_only/state",
        mass=0.0, initial_position=1.0))
    states = loop.probe.subscribe(JointState, "/sim_only/state")
    try:
        assert sim.wait_for_output("ready:", timeout=60), sim.output()
        assert loop.probe.wait_for_subscribers(publisher)
        t0 = time.time()

        def warned() -> bool:  # sent until a report of the drops is seen (one may be lost)
            publisher.publish(Float64MultiArray(data=[50.0, 1.0]))  # two values: dropped
            return any("wrong length" in st.message for t, a in list(loop.diagnostics)
                       if t >= t0 for st in a.status if st.name == "sim_only")
        assert loop.probe.wait_until(warned)
        assert all(m.effort[0] == 0.0 for _, m in list(states))
        # Beyond max_torque (10): saturates. Sent until seen (the sim subscribes best effort:
        # a loaded machine may lose one; the last command stays in force).
        def saturated() -> bool:
            publisher.publish(Float64MultiArray(data=[50.0]))
            return bool(states) and states[-1][1].effort[0] == 10.0
        assert loop.probe.wait_until(saturated, interval=0.1)
        assert loop.probe.wait_until(lambda: states[-1][1].position[0] == 2.5)  # hard stop
    finally:
        sim.stop()


def test_on_shutdown_the_command_ramps_to_zero_and_zero_is_the_last_command(loop):
    """The controller holds the last command: the node's last word must be 0."""
    commands = loop.probe.subscribe(Float64MultiArray, "/close_test/commands", output_qos(1000))
    node = NodeProcess("biosig_ros.nodes.assist_node", "assist_close", {
        **PARAMS, "command_topic": "close_test/commands", "state_topic": ""})
    try:
        assert node.wait_for_output("ready:", timeout=60), node.output()
        loop.feeder.reset(BIC=0.6, TRI=0.0, FCR=0.3)
        assert loop.probe.wait_until(lambda: len(commands) > 20)
        expected = expected_command(0.6, 0.0, 0.3)
        # Enabled (again, should the loaded machine starve an input past its timeout) until
        # the command holds its value.
        holds = lambda: np.allclose(commands[-1][1].data, expected)  # noqa: E731
        assert loop.enabled_until(holds, "/assist_close/enable"), commands[-1][1].data
        t0 = time.time()
        assert node.stop() == 0, node.output()
        assert "stopped: command 0 published" in node.output()
    finally:
        node.stop()
    # The node waited for the final 0 to be acknowledged before it exited: it reached this
    # reader, though a loaded machine may delay the probe's callback.
    assert loop.probe.wait_until(lambda: not any(commands[-1][1].data)), commands[-1][1].data
    assert "was not acknowledged" not in node.output(), node.output()
    ramp = np.array([list(c.data) for t, c in list(commands) if t >= t0])
    assert len(ramp) >= 3 and not ramp[-1].any(), ramp
    steps = np.abs(np.diff(np.vstack([expected, ramp]), axis=0))
    assert (steps <= MAX_STEP + 1e-9).all()
