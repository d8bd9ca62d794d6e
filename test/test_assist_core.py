"""The ROS-free core of assist_node and sim_exo_node: the assistance law, the torque limiter,
the safety state machine, gravity support and pose checks, the one-joint exoskeleton, and the
parameter checks."""
import math

import numpy as np
import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.processing.ik_model import load_model
from biosig_ros.robot.assist_law import AssistLaw, InputFault, JointLaw, deadband
from biosig_ros.robot.assist_settings import AssistSettings, mvc_table
from biosig_ros.robot.exo_sim import GRAVITY, ExoSimSettings, OneJointExo
from biosig_ros.robot.limiter import TorqueLimiter
from biosig_ros.robot.pose_support import PoseSupport
from biosig_ros.robot.command_memory import CommandMemory, default_memory_path
from biosig_ros.robot.safety import DISABLED, ENABLED, FAULT, STOPPED, SafetyState, Watchdog

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
ELBOW = "ulna_elbow_flexion_RotZ"
# A plausible abducted-arm pose of the Wu model (from IK on data/abd.bio).
POSE = np.array([0.52, 0.69, 1.07, 3.0, -1.5, 1.5, -0.2, 0.1, 0.0, 0.1, 0.17, 0.5, 1.0, -1.2,
                 0.8])


def law(**mvc):
    joints = [JointLaw("BIC", "TRI", 4.0, 0.1), JointLaw("DEL", "", 2.0, 0.0)]
    return AssistLaw(joints, mvc, max_activation=3.0)


def chunk(values: dict, names=("TRI", "BIC", "X", "DEL"), samples=3):
    row = [values.get(n, 0.0) for n in names]
    return np.tile(row, (samples, 1))


# --- the law ------------------------------------------------------------------------------

def test_deadband_is_continuous_and_zero_inside():
    x = [-0.3, -0.1, -0.05, 0.0, 0.05, 0.1, 0.3]
    assert [deadband(v, 0.1) for v in x] == pytest.approx([-0.2, 0, 0, 0, 0, 0, 0.2])
    fine = np.linspace(-1, 1, 20001)
    assert np.abs(np.diff([deadband(v, 0.1) for v in fine])).max() <= 1e-4 + 1e-12


def test_torque_is_gain_times_activation_difference_of_the_newest_sample():
    assist = law()
    names = ["TRI", "BIC", "X", "DEL"]
    assist.bind(names, "")
    data = chunk({"BIC": 0.1, "TRI": 0.9})
    data[-1] = [0.2, 0.7, 5.0, 0.4]  # the newest sample decides; X is not used (even if large)
    torque = assist.torque(data)
    assert torque == pytest.approx([4.0 * (0.7 - 0.2 - 0.1), 2.0 * 0.4])
    assert assist.agonist == pytest.approx([0.7, 0.4])
    assert assist.antagonist == pytest.approx([0.2, 0.0])
    # Antagonist stronger: negative torque, deadband applied symmetrically.
    assert assist.torque(chunk({"BIC": 0.2, "TRI": 0.5}))[0] == pytest.approx(4.0 * -0.2)


def test_volts_are_normalised_by_the_mvc_and_refused_without_it():
    names = ["TRI", "BIC", "X", "DEL"]
    with pytest.raises(InputFault, match=r"in V and no MVC is given for .*DEL.*refusing"):
        law(BIC=0.001, TRI=0.002).bind(names, "V")
    assist = law(BIC=0.001, TRI=0.002, DEL=0.0005)
    assist.bind(names, "V")
    torque = assist.torque(chunk({"BIC": 0.0008, "TRI": 0.0002, "DEL": 0.0005}))
    assert torque == pytest.approx([4.0 * (0.8 - 0.1 - 0.1), 2.0])
    assist.bind(names, "mV")  # the same MVC in volts applies to millivolts
    torque = assist.torque(chunk({"BIC": 0.8, "TRI": 0.2, "DEL": 0.5}))
    assert torque == pytest.approx([4.0 * (0.8 - 0.1 - 0.1), 2.0])
    with pytest.raises(InputFault, match="neither volts"):
        assist.bind(names, "N")


def test_missing_channels_non_finite_and_artefacts_are_faults():
    assist = law()
    with pytest.raises(InputFault, match="no channel.*DEL"):
        assist.bind(["TRI", "BIC"], "")
    assist.bind(["TRI", "BIC", "X", "DEL"], "")
    for bad in (math.nan, math.inf):
        data = chunk({"BIC": 0.5})
        data[0, 1] = bad  # an older sample of a used channel
        with pytest.raises(InputFault, match="non-finite"):
            assist.torque(data)
    data = chunk({"BIC": 0.5})
    data[:, 2] = math.nan  # an unused channel does not matter
    assert np.isfinite(assist.torque(data)).all()
    with pytest.raises(InputFault, match="above max_activation"):
        assist.torque(chunk({"BIC": 1e9}))


def test_mvc_parameters_override_the_file():
    settings = AssistSettings(mvc_channels=["A"], mvc=[2.0])
    assert mvc_table(settings, {"A": 1.0, "B": 3.0}) == {"A": 2.0, "B": 3.0}


# --- the limiter --------------------------------------------------------------------------

def test_limiter_clamps_and_rate_limits():
    limiter = TorqueLimiter([3.0, 1.0], [10.0, 100.0], max_dt=0.02)
    trace = [limiter.step(np.array([100.0, -100.0]), 0.01).copy() for _ in range(50)]
    trace = np.array(trace)
    assert np.abs(np.diff(trace[:, 0], prepend=0)).max() == pytest.approx(0.1)
    assert trace[-1] == pytest.approx([3.0, -1.0])
    assert (np.abs(trace) <= [3.0, 1.0]).all()
    # A stalled caller (dt of a second) moves by at most max_dt x rate.
    before = limiter.command.copy()
    after = limiter.step(np.array([-3.0, 1.0]), 1.0)
    assert np.abs(np.subtract(after, before)) == pytest.approx([0.2, 2.0])


def test_limiter_treats_non_finite_targets_as_zero():
    limiter = TorqueLimiter([3.0], [10.0], max_dt=0.02)
    for _ in range(40):
        limiter.step(np.array([2.0]), 0.01)
    assert limiter.command == pytest.approx([2.0])
    values = [limiter.step(np.array([math.nan]), 0.01)[0] for _ in range(30)]
    assert values[0] == pytest.approx(1.9) and values[-1] == 0.0 and limiter.at_zero()
    assert np.all(np.diff(values) <= 0)
    assert np.isfinite(limiter.step(np.array([math.inf]), math.nan)).all()


# --- the safety state machine --------------------------------------------------------------

def test_safety_starts_disabled_and_latches_faults_until_a_fresh_enable():
    safety = SafetyState()
    assert safety.state == DISABLED and not safety.active
    assert not safety.fault("gap")  # nothing to stop while disabled: not latched
    assert safety.state == DISABLED and safety.reason == ""
    ok, message = safety.enable("stale envelope")
    assert not ok and "stale envelope" in message and safety.state == DISABLED
    assert safety.enable("") == (True, "enabled")
    assert safety.fault("NaN") and safety.state == FAULT and safety.reason == "NaN"
    assert not safety.fault("gap") and safety.reason == "NaN"  # the first reason stays
    assert safety.enable("still bad")[0] is False and safety.state == FAULT
    ok, message = safety.enable("")
    assert ok and "cleared fault: NaN" in message and safety.state == ENABLED
    safety.fault("x")
    assert safety.disable()[0] and safety.state == DISABLED and safety.faults == 2


def test_stop_latches_from_any_state_and_only_reset_clears_it():
    safety = SafetyState()
    assert safety.enable("") == (True, "enabled")
    safety.fault("gap")
    ok, message = safety.stop()
    assert ok and safety.state == STOPPED and "only ~/reset" in message
    assert not safety.fault("NaN") and safety.state == STOPPED
    ok, message = safety.enable("")
    assert not ok and "~/reset" in message and safety.state == STOPPED
    assert safety.disable()[0] and safety.state == STOPPED
    ok, message = safety.reset()
    assert ok and safety.state == DISABLED and "cleared: stopped by ~/stop" in message
    assert safety.enable("") == (True, "enabled")
    assert safety.reset()[0] and safety.state == DISABLED  # reset never enables


def test_command_memory_outlives_its_writer_and_refuses_a_torn_record(tmp_path):
    path = tmp_path / "assist.command"
    memory = CommandMemory(path, 2)
    assert memory.recall() is None  # a new file: nothing to resume
    memory.store([1.5, -0.25], 12.0)
    memory.store([1.25, -0.2], 12.01)
    memory.close()
    again = CommandMemory(path, 2)
    assert again.recall() == ([1.25, -0.2], 12.01)
    again.store([0.5, 0.0], 13.0)
    again.close()
    raw = bytearray(path.read_bytes())
    raw[-8:] = (7).to_bytes(8, "little")  # killed between the first and last word
    path.write_bytes(bytes(raw))
    assert CommandMemory(path, 2).recall() is None
    assert CommandMemory(path, 3).recall() is None  # another layout: start afresh
    a = default_memory_path("3", "/exo/assist", "exo/commands")
    assert a.name == "d3_exo_assist_exo_commands.command"
    assert a != default_memory_path("4", "/exo/assist", "exo/commands")


def test_watchdog_names_the_stale_input():
    watchdog = Watchdog({"envelope": 0.1, "joint states": 0.2})
    assert watchdog.stale(0.0) == "no envelope received yet"
    watchdog.feed("envelope", 1.0)
    watchdog.feed("joint states", 1.0)
    assert watchdog.stale(1.05) == ""
    assert "stale envelope" in watchdog.stale(1.15)
    watchdog.feed("envelope", 1.15)
    assert "stale joint states" in watchdog.stale(1.22)


# --- pose: gravity support and checks -----------------------------------------------------

@pytest.fixture(scope="module")
def wu():
    return load_model(WU)


def support(wu, **kw):
    options = dict(gravity_dofs=[ELBOW], signs=[1.0], support_fraction=0.5, watch_dofs=[],
                   range_margin=0.0, max_step=0.35)
    options.update(kw)
    pose = PoseSupport(wu, **options)
    pose.bind(list(wu.dof_names))
    return pose


def test_gravity_support_is_a_fraction_of_biorbd_inverse_dynamics(wu):
    zero = np.zeros(wu.nb_q)
    expected = wu.model.InverseDynamics(POSE, zero, zero).to_array()[wu.dof_names.index(ELBOW)]
    assert abs(expected) > 0.1  # the pose loads the elbow
    assert support(wu).update(POSE) == pytest.approx([0.5 * expected])
    assert support(wu, signs=[-1.0]).update(POSE) == pytest.approx([-0.5 * expected])
    assert support(wu, gravity_dofs=[""]).update(POSE) == pytest.approx([0.0])
    # Joint states in another order, with an extra name: matched by name.
    names = list(reversed(wu.dof_names)) + ["extra"]
    pose = support(wu)
    pose.bind(names)
    assert pose.update(list(reversed(POSE)) + [9.0]) == pytest.approx([0.5 * expected])


def test_gravity_support_does_not_leak_memory(wu):
    import resource

    from biosig_ros.robot import pose_support

    if pose_support.Aliased is None:
        pytest.skip("biosig_ros.processing.ik_biorbd (leak-free biorbd vectors) not in this build")
    pose = support(wu)
    assert pose.leak_free
    for _ in range(2000):
        pose.update(POSE)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20000):
        pose.update(POSE)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 1024, f"{grown_kb} kB for 20000 poses (numpy arguments leak ~8 MB)"


def test_pose_faults(wu):
    pose = support(wu)
    pose.update(POSE)
    bad = POSE.copy()
    bad[wu.dof_names.index(ELBOW)] = math.nan
    with pytest.raises(InputFault, match="non-finite"):
        pose.update(bad)
    pose.update(POSE)
    jumped = POSE.copy()
    jumped[wu.dof_names.index("humerus_shoulder_ele_RotY")] += 0.5
    with pytest.raises(InputFault, match="humerus_shoulder_ele_RotY moved 0.500"):
        pose.update(jumped)
    pose.update(jumped)  # the jump is one fault, not a fault on every later frame
    out = POSE.copy()
    out[wu.dof_names.index(ELBOW)] = 3.1
    with pytest.raises(InputFault, match=r"out of range: ulna_elbow_flexion_RotZ = 3.100"):
        support(wu).update(out)
    support(wu, range_margin=0.2).update(out)
    out[wu.dof_names.index("thorax_RotX")] = 5.0  # thorax not watched here
    support(wu, watch_dofs=[ELBOW], range_margin=0.2).update(out)
    with pytest.raises(InputFault, match="joint states lack model DoF"):
        support(wu).bind(["a", "b"])


def test_a_free_rotation_wrapping_is_no_jump(wu):
    """IK publishes a free rotation (the Wu thorax: range [-pi, pi]) wrapped into its range:
    crossing -pi/pi is a step of a few mrad, not of 2 pi (watch_dofs [] = every DoF)."""
    thorax = wu.dof_names.index("thorax_RotX")
    pose = support(wu)
    before, after = POSE.copy(), POSE.copy()
    before[thorax], after[thorax] = math.pi - 0.002, -math.pi + 0.002
    pose.update(before)
    pose.update(after)
    pose.update(before)
    stepped = before.copy()
    stepped[thorax] = math.pi - 0.5  # 0.498 rad from the previous pose: a jump
    with pytest.raises(InputFault, match="thorax_RotX moved 0.498"):
        pose.update(stepped)


# --- the simulated exoskeleton ------------------------------------------------------------

def test_exo_reaches_the_torque_over_damping_speed_and_stops_at_its_limits():
    exo = OneJointExo(ExoSimSettings(inertia=0.05, damping=0.5, mass=0.0, position_min=0.0,
                                     position_max=2.5, initial_position=0.5))
    for _ in range(20):
        exo.step(0.25, 0.01)
    # First order: v(t) = torque / damping x (1 - exp(-t damping / inertia)).
    assert exo.velocity == pytest.approx(0.5 * (1 - math.exp(-0.2 * 0.5 / 0.05)), rel=0.01)
    for _ in range(100):
        exo.step(0.25, 0.01)
    assert exo.velocity == pytest.approx(0.25 / 0.5, rel=1e-3)
    for _ in range(1000):
        exo.step(5.0, 0.01)
    assert exo.position == 2.5 and exo.velocity == 0.0 and exo.at_limit
    for _ in range(1000):
        exo.step(-5.0, 0.01)
    assert exo.position == 0.0 and exo.at_limit
    exo.step(math.nan, 0.01)
    assert exo.torque == 0.0


def test_exo_gravity_balances_the_holding_torque():
    s = ExoSimSettings(inertia=0.05, damping=0.5, mass=1.5, com_distance=0.15,
                       initial_position=1.0)
    exo = OneJointExo(s)
    hold = s.mass * GRAVITY * s.com_distance * math.sin(1.0)
    for _ in range(200):
        exo.step(hold, 0.01)
    assert exo.position == pytest.approx(1.0, abs=1e-9)
    for _ in range(2000):
        exo.step(0.0, 0.01)  # falls back to hanging (position 0)
    assert exo.position == pytest.approx(0.0, abs=1e-3)


def test_exo_settings_are_checked():
    with pytest.raises(ConfigError, match="'position_min'.*must be below"):
        ExoSimSettings(position_min=1.0, position_max=0.5, initial_position=0.7)
    with pytest.raises(ConfigError, match="'initial_position'"):
        ExoSimSettings(initial_position=3.0)
    with pytest.raises(ConfigError, match="'inertia'"):
        ExoSimSettings(inertia=0.0)


# --- parameters ---------------------------------------------------------------------------

def test_per_joint_lists_broadcast_and_must_match():
    settings = AssistSettings(joints=["a", "b"], agonists=["X", "Y"], gains=[2.0])
    assert settings.gains == [2.0, 2.0] and settings.antagonists == ["EMG2", "EMG2"]
    assert [j.agonist for j in settings.joint_laws()] == ["X", "Y"]


@pytest.mark.parametrize("overrides, message", [
    (dict(joints=[]), "'joints' must list"),
    (dict(joints=["a", "a"], agonists=["X", "Y"]), "names a joint twice"),
    (dict(agonists=["X", "Y"]), "'agonists' must give one channel per joint"),
    (dict(joints=["a", "b", "c"], agonists=["X", "Y", "Z"], gains=[1.0, 2.0]),
     "'gains' has 2 values for 3 joint"),
    (dict(torque_limits=[0.0]), "'torque_limits' entry 0 must be > 0"),
    (dict(rate_limits=[math.inf]), "'rate_limits' entry 0"),
    (dict(deadbands=[-0.1]), "'deadbands' entry 0 must be >= 0"),
    (dict(gravity_signs=[0.5]), "'gravity_signs' entries must be 1 or -1"),
    (dict(mvc_channels=["A"], mvc=[]), "'mvc' .* and 'mvc_channels'"),
    (dict(mvc_channels=["A"], mvc=[-1.0]), "'mvc' entry 0 must be > 0"),
    (dict(support_fraction=0.5, gravity_dofs=[""]), "names no model DoF"),
    (dict(support_fraction=0.5, gravity_dofs=[ELBOW], joint_states_topic=""),
     "needs the pose"),
    (dict(command_topic=""), "'command_topic' must be set"),
    (dict(envelope_topic=""), "'envelope_topic' must be set"),
    (dict(source="torque"), "'source' must be one of emg_law, muscle_torque, got 'torque'"),
    (dict(source="muscle_torque"), "'torque_dofs' names no model DoF"),
    (dict(source="muscle_torque", torque_dofs=[ELBOW], muscle_torque_topic=""),
     "needs 'muscle_torque_topic'"),
    (dict(source="muscle_torque", torque_dofs=[ELBOW], torque_gains=[math.nan]),
     "'torque_gains' entry 0 must be finite"),
])
def test_bad_parameters_are_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        AssistSettings(**overrides)


def test_the_muscle_torque_source_needs_no_envelope_channels():
    settings = AssistSettings(source="muscle_torque", joints=["a", "b"], agonists=[],
                              envelope_topic="", torque_dofs=[ELBOW, ""], torque_gains=[0.3])
    assert settings.torque_gains == [0.3, 0.3] and settings.torque_dofs == [ELBOW, ""]


def test_ik_quality_problems():
    from types import SimpleNamespace

    from biosig_ros.ros.ik_quality import quality_problem

    def quality(**fields):
        base = dict(frame_number=7, reinitialised=False, reinitialisation_reason="",
                    dofs_out_of_range=[], underdetermined_segments=[])
        return SimpleNamespace(**{**base, **fields})

    assert quality_problem(quality()) == ""
    assert quality_problem(quality(reinitialised=True, reinitialisation_reason="diverged")) == (
        "IK re-initialised at frame 7: diverged")
    assert "thorax_RotX" in quality_problem(quality(dofs_out_of_range=["thorax_RotX"]))
    assert quality_problem(quality(dofs_out_of_range=["thorax_RotX"]), [ELBOW]) == ""
    assert "thorax" in quality_problem(quality(underdetermined_segments=["thorax"]))
    assert quality_problem(quality(underdetermined_segments=["thorax"]), (), False) == ""
    stepped = quality(discontinuity=True, discontinuity_reason="thorax_RotX stepped 0.5 rad",
                      dofs_stepped=["thorax_RotX"])
    assert quality_problem(stepped) == (
        "IK pose discontinuous at frame 7: thorax_RotX stepped 0.5 rad")
    assert quality_problem(stepped, [ELBOW]) == ""  # not a watched DoF
    assert "loop restart" in quality_problem(
        quality(discontinuity=True, discontinuity_reason="loop restart"), [ELBOW])
