"""torque estimation: the estimator's cost per frame, the latency torque_node adds over a bare
relay, and muscle vs inverse-dynamics torque on the shipped recording before and after
calibration. Prints figures; passes or fails nothing.

    tools/run bench torque [--seconds 6] [--rounds 3] [--skip-latency]

1. Cost: TorqueEstimator.step on the Wu model (15 DoF, 31 muscles) with a 10-channel map,
   a synthetic trial (muscle torque + inverse dynamics per frame): back to back, and paced at
   100 Hz (this machine runs code called every 10 ms several times slower, docs/notes.md).
2. Added latency: a probe publishes an envelope sample, then (as IK does) the frame's
   IkQuality and its pose with the same stamp at 100 Hz, and times torque/muscle from the
   pose's publication. Targets, alternately, in their
   own processes (node_runner.main_for): a relay (one JointState per pose, same QoS) and
   torque_node.
3. data/abd.bio offline through the core: the exo demo's causal envelope (7 Hz low-pass, one
   sample per 10 ms, volts / the map's mvc), biorbd Kalman IK of the markers, the estimator
   with config/torque_channel_map_abd.yaml; RMSE and R^2 of the muscle torque against the
   inverse dynamics on the calibration DoFs, before and after calibration (fitted on the first
   half, evaluated on the second; and fitted on all of it).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))
from ros_harness import benchmark_environment, print_load  # noqa: E402

benchmark_environment()

WU = str(REPO / "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod")
MAP = str(REPO / "config/torque_channel_map_abd.yaml")
CHANNELS = [f"EMG{i}" for i in range(1, 11)]


def estimator():
    from biosig_ros.processing.torque_estimator import TorqueEstimator, TorqueSettings
    est = TorqueEstimator(TorqueSettings(model_path=WU, channel_map_file=MAP))
    est.set_channels(CHANNELS)
    return est


def cost() -> None:
    from biosig_ros.processing.torque_synthetic import synthetic_trial
    trial = synthetic_trial(len(CHANNELS), seconds=10.0, seed=0)
    print("\nEstimator cost per frame (muscle torque + inverse dynamics, Wu model, 10 channels)")
    for label, pace in (("back to back", 0.0), ("paced at 100 Hz", 0.01)):
        est = estimator()
        times = []
        for t, q, qd, u in zip(trial.stamps, trial.q, trial.qdot, trial.excitation):
            start = time.perf_counter()
            est.step(t, q, qd, u)
            times.append(time.perf_counter() - start)
            if pace:
                time.sleep(pace)
        v = np.array(times[50:]) * 1e3
        print(f"  {label:16s}: median {np.median(v):.3f} ms, p90 {np.percentile(v, 90):.3f}, "
              f"p99 {np.percentile(v, 99):.3f}, max {v.max():.3f} ({len(v)} frames; goal: "
              "median <= 0.5 ms)")


def serve_relay() -> None:
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from biosig_ros.ros.node_runner import main_for
    from biosig_ros.ros.qos import input_qos, output_qos

    class Relay(Node):
        def __init__(self):
            super().__init__("relay")
            publisher = self.create_publisher(JointState, "torque/muscle", output_qos())
            self.create_subscription(JointState, "ik/joint_states", publisher.publish,
                                     input_qos())
            self.get_logger().info("ready: ik/joint_states -> torque/muscle")

    main_for(Relay, "relay")


def added_latency(seconds: float, rounds: int) -> None:
    from ros_harness import NodeProcess, RosProbe
    from sensor_msgs.msg import JointState

    from biosig_ros.msg import IkQuality, SignalChunk
    from biosig_ros.processing.torque_synthetic import synthetic_trial
    from biosig_ros.ros.qos import input_qos, output_qos

    trial = synthetic_trial(len(CHANNELS), seconds=seconds + 2.0, seed=1)
    dofs = list(estimator().model.dof_names)
    targets = {"relay": ("benchmarks.torque", ["--serve-relay"], None),
               "torque_node": ("biosig_ros.nodes.torque_node", [],
                               {"model_path": WU, "channel_map_file": MAP})}
    results: dict[str, list[float]] = {label: [] for label in targets}
    print(f"\nAdded latency: envelope then pose at 100 Hz, {rounds} x {seconds:g} s per target; "
          "pose published -> torque/muscle received")
    with RosProbe("torque_latency_probe") as probe:
        sent: dict[tuple[int, int], float] = {}
        delays: list[float] = []
        lock = threading.Lock()

        def on_torque(msg):
            now = time.perf_counter()
            with lock:
                key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
                if key in sent:
                    delays.append(now - sent[key])

        probe.node.create_subscription(JointState, "/torque/muscle", on_torque, input_qos(1000))
        envelope = probe.publisher(SignalChunk, "/emg/envelope")
        pose = probe.publisher(JointState, "/ik/joint_states")
        quality = probe.publisher(IkQuality, "/ik/quality", output_qos())  # reliable, as IK's
        for _ in range(rounds):
            for label, (module, arguments, params) in targets.items():
                name = "relay" if label == "relay" else "torque"
                with NodeProcess(module, name, params, arguments) as node:
                    if not (node.wait_for_output("ready", 60)
                            and probe.wait_for_subscribers(pose)):
                        print(f"  {label}: did not start\n{node.output()}")
                        continue
                    with lock:
                        delays.clear()
                        sent.clear()
                    next_time = time.perf_counter()
                    base = time.time()
                    for k in range(len(trial.stamps)):
                        t = base + trial.stamps[k]
                        sec, nsec = int(t), int(t % 1 * 1e9)
                        chunk = SignalChunk(channel_names=CHANNELS, unit="", sample_rate=100.0,
                                            first_sample_index=k, sample_count=1,
                                            data=trial.excitation[k].tolist())
                        chunk.header.stamp.sec, chunk.header.stamp.nanosec = sec, nsec
                        joints = JointState(name=dofs, position=trial.q[k].tolist(),
                                            velocity=trial.qdot[k].tolist())
                        joints.header.stamp.sec, joints.header.stamp.nanosec = sec, nsec
                        frame_quality = IkQuality()
                        frame_quality.header.stamp = joints.header.stamp
                        next_time += 0.01
                        delay = next_time - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                        envelope.publish(chunk)
                        quality.publish(frame_quality)
                        with lock:
                            sent[(sec, nsec)] = time.perf_counter()
                        pose.publish(joints)
                    time.sleep(0.3)
                    with lock:
                        results[label] += delays[200:]  # after the first 2 s (warm-up)
    for label, values in results.items():
        if values:
            v = np.array(values) * 1e3
            print(f"  {label:12s}: p50 {np.percentile(v, 50):.3f} ms, p90 "
                  f"{np.percentile(v, 90):.3f}, p99 {np.percentile(v, 99):.3f} ({len(v)} frames)")
    if results["relay"] and results["torque_node"]:
        print(f"  added by torque_node: p50 {(np.percentile(results['torque_node'], 50) - np.percentile(results['relay'], 50)) * 1e3:+.3f} ms, "  # noqa: E501
              f"p90 {(np.percentile(results['torque_node'], 90) - np.percentile(results['relay'], 90)) * 1e3:+.3f} ms (goal: <= 1 ms at p50)")  # noqa: E501


def recording_frames():
    """(stamps, q, qdot, excitation) of data/abd.bio at 100 Hz, as the exo demo computes them."""
    from biosig_ros.io.bio_file import load_bio
    from biosig_ros.processing.emg_offline import causal_envelope
    from biosig_ros.processing.emg_pipeline import EmgPipelineSettings
    from biosig_ros.processing.ik_solver import IkSettings, IkSolver
    from biosig_ros.signals import MarkerFrame

    content = load_bio(REPO / "data/abd.bio")
    settings = EmgPipelineSettings(sample_rate=2000.0, channel_count=10, bandpass_order=5,
                                   envelope="lowpass", lowpass_hz=7.0, lowpass_order=2)
    envelope = causal_envelope(np.asarray(content["emg"], dtype=float).T, settings)
    markers = np.asarray(content["markers"], dtype=float)  # 3 x markers x frames, mm
    names = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom", "SCAP_AA",
             "EPICl", "EPICm", "DELT", "ARMl", "LARM_elb", "STYLu", "STYLr"]
    solver = IkSolver(IkSettings(model_path=WU, marker_units="mm"))
    stamps, qs, qdots, excitation = [], [], [], []
    for k in range(markers.shape[2]):
        result = solver.step(MarkerFrame(markers[:, :, k].T, names, k, k / 100.0, 100.0))
        if result is None:
            continue
        sample = min(len(envelope) - 1, 20 * k + 19)  # the newest sample of the 10 ms block
        stamps.append(k / 100.0)
        qs.append(result.q)
        qdots.append(result.qdot)
        excitation.append(envelope[sample])
    return np.array(stamps), np.array(qs), np.array(qdots), np.array(excitation)


def recording() -> None:
    from biosig_ros.processing.torque_calibration import (TorqueWindow, calibrate_gains,
                                                          dof_indices, fit_quality)
    stamps, q, qdot, envelope = recording_frames()
    est = estimator()
    results = [est.step(t, qi, qdi, est.normalise(e, "V"))
               for t, qi, qdi, e in zip(stamps, q, qdot, envelope)]
    dofs = est.settings.calibration_dofs
    columns = dof_indices(est.model, dofs)
    muscle = np.array([r.muscle for r in results])
    inverse = np.array([r.inverse_dynamics for r in results])
    window = TorqueWindow(q=q, muscle_qdot=np.array([r.muscle_qdot for r in results]),
                          channel_activations=np.array([r.channel_activations for r in results]),
                          inverse_dynamics=inverse, muscle=muscle)
    half = len(stamps) // 2
    print(f"\ndata/abd.bio offline ({len(stamps)} frames at 100 Hz, assumed channel map), muscle "
          f"vs inverse-dynamics torque on {', '.join(dofs)}")
    rmse, r2 = fit_quality(muscle[:, columns], inverse[:, columns])
    print(f"  before calibration (gains 1), all frames : RMSE {rmse:.3f} N.m, R^2 {r2:.3f}")

    def part(rows):
        return TorqueWindow(*(getattr(window, f)[rows] for f in
                              ("q", "muscle_qdot", "channel_activations", "inverse_dynamics",
                               "muscle")))

    first, second = slice(0, half), slice(half, None)
    # as the node's ~/calibrate fits: activations low-passed by calibration_smoothing_hz
    smoothing = dict(smoothing_hz=est.settings.calibration_smoothing_hz,
                     frame_rate=est.settings.frame_rate)
    print(f"  calibration_smoothing_hz {est.settings.calibration_smoothing_hz:g} (the node's "
          "default)")
    fit = calibrate_gains(est.model, est.groups, part(first), dofs, **smoothing)
    est2 = estimator()
    est2.set_gains(fit.gains)
    muscle2 = np.array([est2.step(t, qi, qdi, est2.normalise(e, "V")).muscle
                        for t, qi, qdi, e in zip(stamps, q, qdot, envelope)])
    rmse_b, r2_b = fit_quality(muscle[second][:, columns], inverse[second][:, columns])
    rmse_a, r2_a = fit_quality(muscle2[second][:, columns], inverse[second][:, columns])
    print(f"  fitted on the first half, second half     : RMSE {rmse_b:.3f} -> {rmse_a:.3f} N.m, "
          f"R^2 {r2_b:.3f} -> {r2_a:.3f}")
    whole = calibrate_gains(est.model, est.groups, window, dofs, **smoothing)
    print(f"  fitted on all frames (in-sample)          : RMSE {whole.rmse_before:.3f} -> "
          f"{whole.rmse_after:.3f} N.m, R^2 {whole.r2_before:.3f} -> {whole.r2_after:.3f}")
    print("  gains (all frames): " + ", ".join(f"{n}={g:.2f}" for n, g in
                                               zip(CHANNELS, whole.gains)))


def main() -> None:
    if "--serve-relay" in sys.argv:
        serve_relay()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-recording", action="store_true")
    args = parser.parse_args()
    print_load()
    cost()
    if not args.skip_recording:
        recording()
    if not args.skip_latency:
        added_latency(args.seconds, args.rounds)
    print_load(at_end=True)


if __name__ == "__main__":
    main()
