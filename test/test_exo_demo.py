"""The exo_demo graph: replay of data/abd.bio -> EMG processing (low-delay envelope) -> IK ->
assist -> simulated exo, and EMG + IK -> torque, started with `python -m biosig_ros.graph exo_demo`."""
import os
import signal
import subprocess
import sys
import time

import pytest
import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from biosig_ros.msg import AssistState, SignalChunk
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings

from ros_harness import REPO, RosProbe, shipped_parameters
from test_graph import start_graph


def enable_with_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "biosig_ros.nodes.assist_enable", *args],
                          cwd=REPO, env=os.environ.copy(), capture_output=True,
                          encoding="utf-8", errors="replace", timeout=60)


@pytest.mark.integration
def test_exo_demo_assists_the_simulated_elbow_from_the_recording():
    assist = shipped_parameters("assist.yaml")
    limit = assist["torque_limits"][0]
    with RosProbe() as probe:
        envelope = probe.subscribe(SignalChunk, "/emg/envelope")
        states = probe.subscribe(AssistState, "/assist/state")
        commands = probe.subscribe(Float64MultiArray, "/exo/commands")
        exo = probe.subscribe(JointState, "/exo/joint_states")
        poses = probe.subscribe(JointState, "/ik/joint_states")
        muscle = probe.subscribe(JointState, "/torque/muscle")
        inverse = probe.subscribe(JointState, "/torque/inverse_dynamics")
        graph = start_graph("exo_demo")
        try:
            # Disabled: zero commands while every input flows.
            ready = probe.wait_until(
                lambda: states and states[-1][1].reason == "" and len(exo) > 50, timeout=90)
            assert ready, states[-1][1] if states else "no assist/state"
            assert not any(any(c.data) for _, c in list(commands))
            # Enabled with the command-line tool (no ros2cli here), and again after each fault:
            # the replay loops (the pose jumps from the recording's last frame to its first and
            # IK restarts), and a loaded machine can starve a node past a timeout.
            t0 = time.time()

            def assisted_states():
                return sum(1 for t, s in list(states) if t >= t0 and s.state == "enabled"
                           and abs(s.command[0]) > 0.1)

            def elbow_travel():
                moved = [m.position[0] for t, m in list(exo) if t >= t0]
                return np.ptp(moved) if moved else 0.0

            answers = []
            deadline = time.monotonic() + 90
            # Until assisted for a while and the elbow moved: how far it moves in a given
            # half second depends on the phase of the looping recording (the flexor's EMG).
            while time.monotonic() < deadline and (assisted_states() < 50
                                                   or elbow_travel() <= 0.01):
                if states[-1][1].state != "enabled":
                    tool = enable_with_tool()
                    assert (tool.returncode, tool.stdout.split(": ")[1][:7]) in (
                        (0, "enabled"), (1, "not ena")), tool
                    answers.append(tool.stdout.strip())
                time.sleep(0.2)
            assisted = assisted_states() >= 50
            travel = elbow_travel()
            off = enable_with_tool("--off")
            assert off.returncode == 0 and "disabled" in off.stdout, off
            assert probe.wait_until(lambda: states[-1][1].state == "disabled"
                                    and not any(states[-1][1].command))
        finally:
            graph.send_signal(signal.SIGINT)
            output, _ = graph.communicate(timeout=60)
    assert assisted, (answers, output[-3000:])
    assert any(a.startswith("/assist/enable: enabled") for a in answers), answers
    assert graph.returncode == 0, output[-3000:]
    # The envelope of the exo config: a low-pass, one sample per 10 ms, in volts.
    last = envelope[-1][1]
    assert last.sample_count == 1 and last.sample_rate == 100.0 and last.unit == "V"
    enabled = [s for t, s in list(states) if t >= t0 and s.state == "enabled"]
    gravity = np.array([s.gravity_torque[0] for s in enabled])
    assert (gravity > 0).all()  # half of the Wu model's elbow gravity torque, abducted arm
    values = np.array([c.data[0] for t, c in list(commands)])
    assert np.isfinite(values).all() and np.abs(values).max() <= limit
    assert travel > 0.01  # the simulated elbow moved under the command
    # The torque chain ran too: both torques per DoF, stamped with poses' capture times.
    assert len(muscle) > 50 and len(inverse) > 50, output[-3000:]
    pose_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for _, m in list(poses)}
    latest = list(muscle)[-20:] + list(inverse)[-20:]
    for _, m in latest:
        assert list(m.name) == list(poses[-1][1].name) and len(m.effort) == len(m.name)
        assert np.isfinite(m.effort).all()
    # Best-effort probe: it may miss a pose now and then, so most stamps, not every one.
    matched = sum((m.header.stamp.sec, m.header.stamp.nanosec) in pose_stamps
                  for _, m in latest)
    assert matched >= 0.8 * len(latest), (matched, len(latest))


def step_response(settings: dict, seeds: int = 16, rate: int = 2000) -> tuple[float, float]:
    """Median over seeds of (ms to half of a 10x amplitude step, SNR in dB = mean / standard
    deviation of the envelope at the high level) on white-noise EMG."""
    delays, snrs = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        amplitude = np.where(np.arange(6 * rate) >= 3 * rate, 1.0, 0.1)
        emg = rng.standard_normal((6 * rate, 1)) * amplitude[:, None]
        pipeline = EmgPipeline(EmgPipelineSettings(channel_count=1, **settings), 1)
        envelope = pipeline.process(emg).values[:, 0]
        low, high = envelope[2 * rate:3 * rate].mean(), envelope[4 * rate:].mean()
        delays.append(np.argmax(envelope[3 * rate:] >= (low + high) / 2) / rate * 1000)
        snrs.append(20 * np.log10(high / envelope[4 * rate:].std()))
    return float(np.median(delays)), float(np.median(snrs))


def test_the_exo_envelope_is_fast_and_no_noisier_than_the_median():
    base = shipped_parameters("emg_processing.yaml")
    exo = shipped_parameters("emg_processing_exo.yaml")
    keys = ("envelope", "envelope_window", "lowpass_hz", "lowpass_order", "bandpass_low_hz",
            "bandpass_high_hz", "bandpass_order")
    median_delay, median_snr = step_response({k: base[k] for k in keys})
    delay, snr = step_response({k: {**base, **exo}[k] for k in keys})
    assert base["envelope"] == "median" and median_delay > 60  # biosiglive's default: ~70 ms
    assert delay <= 40.0, delay
    assert snr >= median_snr, (snr, median_snr)
