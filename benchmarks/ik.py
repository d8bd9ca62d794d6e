"""Benchmark: inverse kinematics on the Wu model (15 DoF, 16 markers).

    tools/run bench ik [--seconds 10] [--rates 100,200,300,500,750,1000] [--step 3]
                       [--methods kalman,least_squares] [--skip-ros]
    tools/run bench ik --soak MINUTES [--methods kalman]

1. Solve time per frame (median, p99, first frame) of IkSolver.step for both methods, on a
   synthetic trajectory (the model's own forward kinematics, 1 mm noise) and on data/abd.bio.
2. End-to-end latency across processes: markers published here at 100 Hz (header.stamp = send
   time), ik_node in its own process, JointState received here: arrival time - stamp.
3. Highest sustained marker rate without drops: each rate for --step seconds; a rate is
   sustained when the node received every frame (no frame_number gap) and solved every one
   (none skipped) and every JointState came back here.
Targets: p99 <= 3 ms at 100 Hz; 500 Hz sustained. Prints figures; never passes or fails.

--soak MINUTES instead: memory of the solver alone over 30k frames, then ik_node in its own
process fed at 100 Hz for MINUTES: its resident memory every 10 s, and the growth after the
first minute (warm-up) as MB per hour. Target (issue #11): under 1 MB per 10k frames alone,
flat across processes.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from ros_harness import benchmark_environment  # noqa: E402

benchmark_environment()

from biosig_ros.io.bio_file import load_bio  # noqa: E402
from biosig_ros.paths import resolve_data_path  # noqa: E402
from biosig_ros.processing.ik_model import load_model  # noqa: E402
from biosig_ros.processing.ik_solver import IkSettings, IkSolver  # noqa: E402
from biosig_ros.processing.ik_synthetic import synthetic_trajectory  # noqa: E402
from biosig_ros.signals import MarkerFrame  # noqa: E402

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
RECORDING_NAMES = ["STER", "XIPH", "C7", "T10", "CLAV_SC", "CLAV_AC", "SCAP_IA", "Acrom",
                   "SCAP_AA", "EPICl", "EPICm", "DELT", "ARMl", "LARM_elb", "STYLu", "STYLr"]


def percentiles(values_ms) -> str:
    values = np.asarray(values_ms)
    return (f"median {np.median(values):6.3f} ms  p99 {np.percentile(values, 99):6.3f} ms  "
            f"max {values.max():6.2f} ms")


def solve_times(args) -> None:
    model = load_model(WU)
    trajectory = synthetic_trajectory(model, seconds=args.seconds, noise=0.001, seed=0)
    synthetic = [trajectory.frame(i) for i in range(len(trajectory.q))]
    markers = load_bio(resolve_data_path("data/abd.bio"))["markers"]
    recording = [MarkerFrame(markers[:, :, k].T, RECORDING_NAMES, k, k / 100, 100.0)
                 for k in range(markers.shape[2])]
    print(f"1. IkSolver.step on {WU} ({model.nb_q} DoF, {model.nb_markers} markers), "
          "one process, one thread")
    for method in args.methods:
        for label, frames, units in (("synthetic 1 mm noise", synthetic, "m"),
                                     ("abd.bio (mm)", recording, "mm")):
            solver = IkSolver(IkSettings(method=method, marker_units=units), model)
            times = []
            for frame in frames:
                started = time.perf_counter()
                solver.step(frame)
                times.append((time.perf_counter() - started) * 1000)
            print(f"   {method:13s} {label:21s} {len(frames):5d} frames: "
                  f"{percentiles(times[1:])}  first frame {times[0]:5.1f} ms")


class NodeUnderTest:
    """ik_node in its own process, and this process's probe publishing and receiving."""

    def __init__(self, method: str, keep_joints: bool = True):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState

        from biosig_ros.msg import MarkerSet
        from biosig_ros.ros.qos import sensor_qos
        from ros_harness import NodeProcess, RosProbe

        self.probe = RosProbe(f"ik_bench_{method}")
        self.joint_count = 0
        if keep_joints:
            self.joints = self.probe.subscribe(JointState, "/ik/joint_states")
        else:  # a soak: count them only, this process's memory stays flat too
            self.probe.node.create_subscription(JointState, "/ik/joint_states",
                                                self._count_joints, sensor_qos(1000))
        self.diagnostics = self.probe.subscribe(DiagnosticArray, "/diagnostics")
        self.publisher = self.probe.publisher(MarkerSet, "/markers")
        self.node = NodeProcess("biosig_ros.nodes.ik_node", "ik", {"method": method})
        if not (self.node.wait_for_output("ready:", 30) and self.probe.wait_until(
                lambda: self.publisher.get_subscription_count() >= 1
                and self.probe.node.count_publishers("/ik/joint_states") >= 1, 30)):
            raise SystemExit(f"ik_node did not start:\n{self.node.output()}")
        time.sleep(1.0)

    def _count_joints(self, _msg) -> None:
        self.joint_count += 1

    def counters(self, after: float) -> dict:
        """The node's diagnostic counters from a status published after `after`."""
        deadline = time.time() + 5
        while time.time() < deadline:
            for _, array in reversed(self.diagnostics):
                stamp = array.header.stamp.sec + array.header.stamp.nanosec * 1e-9
                if stamp > after and array.status and array.status[0].name == "ik":
                    return {kv.key: kv.value for kv in array.status[0].values}
            time.sleep(0.05)
        return {}

    def close(self):
        self.node.stop()
        self.probe.close()


def paced_publish(under_test: NodeUnderTest, frames, rate: float):
    """Publish frames at `rate` with stamp = send time; returns the achieved rate."""
    from biosig_ros.ros.conversions import frame_to_msg

    messages = [frame_to_msg(frame) for frame in frames]
    period = 1.0 / rate
    start = time.perf_counter()
    wall0 = time.time() - start
    for k, msg in enumerate(messages):
        delay = start + k * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # no busy-wait: it would steal the CPU the node needs
        sent = wall0 + time.perf_counter()
        msg.header.stamp.sec = int(sent)
        msg.header.stamp.nanosec = int((sent - int(sent)) * 1e9)
        under_test.publisher.publish(msg)
    return len(messages) / (time.perf_counter() - start) if len(messages) > 1 else rate


class Motion:
    """One continuous synthetic movement, cut into pieces published at any rate."""

    def __init__(self, model):
        self.model = model
        self.time = 0.0
        self.number = 0

    def next(self, rate: float, count: int) -> list[MarkerFrame]:
        piece = synthetic_trajectory(self.model, seconds=count / rate, frame_rate=rate,
                                     noise=0.001, seed=2, start_time=self.time)
        frames = [piece.frame(i) for i in range(count)]
        for frame in frames:
            frame.frame_number = self.number
            self.number += 1
        self.time += count / rate
        return frames


def ros_figures(args, method: str) -> None:
    motion = Motion(load_model(WU))
    under_test = NodeUnderTest(method)
    try:
        # warm-up: the filter's first frame takes tens of milliseconds
        paced_publish(under_test, motion.next(100.0, 100), 100.0)
        time.sleep(1.0)
        # 2. latency at 100 Hz over 5 s
        count = 500
        before = len(under_test.joints)
        paced_publish(under_test, motion.next(100.0, count), 100.0)
        time.sleep(0.5)
        received = under_test.joints[before:]
        latency = [(arrival - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)) * 1000
                   for arrival, m in received]
        print(f"2. {method}: markers -> JointState across processes at 100 Hz "
              f"({len(received)}/{count} back): {percentiles(latency)}")
        # 3. sustained rates
        best, all_clean_up_to, still_clean = 0.0, 0.0, True
        previous = under_test.counters(time.time())
        for rate in args.rates:
            count = int(rate * args.step)
            before = len(under_test.joints)
            achieved = paced_publish(under_test, motion.next(rate, count), rate)
            time.sleep(1.0)
            now = under_test.counters(time.time())
            if not now:
                print(f"   {rate:6.0f} Hz: no diagnostics from the node")
                break
            delta = {k: int(now[k]) - int(previous.get(k, 0)) for k in (
                "frames_received", "frames_solved", "frames_skipped", "frames_missing_upstream",
                "reinitialisations")}
            previous = now
            back = len(under_test.joints) - before
            clean = (delta["frames_received"] == count and delta["frames_skipped"] == 0
                     and back == count and achieved >= 0.98 * rate)
            if clean:
                best = max(best, rate)
            still_clean = still_clean and clean
            if still_clean:
                all_clean_up_to = rate
            print(f"   {rate:6.0f} Hz for {args.step:g} s (sent at {achieved:6.0f} Hz): received "
                  f"{delta['frames_received']}/{count}, solved {delta['frames_solved']}, "
                  f"skipped {delta['frames_skipped']}, missing upstream "
                  f"{delta['frames_missing_upstream']}, JointState back {back}"
                  f"{'  <- no drops' if clean else ''}; node solve p99 "
                  f"{now.get('solve_time_ms_p99')} ms, restarts {delta['reinitialisations']}")
        print(f"3. {method}: highest sustained marker rate without drops: {best:g} Hz "
              f"(every rate up to {all_clean_up_to:g} Hz without drops)")
    finally:
        under_test.close()


def rss_mb(pid: str | int = "self") -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def solver_memory(method: str, frames: int = 30_000, warm_up: int = 3000) -> None:
    import gc

    model = load_model(WU)
    trajectory = synthetic_trajectory(model, seconds=10.0, noise=0.001, seed=0)
    solver = IkSolver(IkSettings(method=method), model)
    samples = []
    for k in range(warm_up + frames):
        i = k % len(trajectory.q)
        solver.step(MarkerFrame(trajectory.markers[i].copy(), list(trajectory.marker_names),
                                k, k / 100, 100.0))
        if k >= warm_up and (k - warm_up) % 5000 == 0:
            gc.collect()
            samples.append(rss_mb())
    gc.collect()
    grown = rss_mb() - samples[0]
    print(f"   {method}: IkSolver alone, {frames} frames after {warm_up} of warm-up: RSS "
          f"{samples[0]:.1f} -> {rss_mb():.1f} MB ({grown / frames * 10_000:+.3f} MB per 10k "
          f"frames; every 5k: {', '.join(f'{s - samples[0]:+.2f}' for s in samples[1:])})")


def node_memory(method: str, minutes: float, rate: float = 100.0) -> None:
    from biosig_ros.ros.conversions import frame_to_msg, seconds_to_time

    model = load_model(WU)
    trajectory = synthetic_trajectory(model, seconds=20.0, noise=0.001, seed=3)
    messages = [frame_to_msg(trajectory.frame(i)) for i in range(len(trajectory.q))]
    under_test = NodeUnderTest(method, keep_joints=False)
    pid = under_test.node.process.pid
    samples = []  # (seconds since start, RSS MB)
    try:
        start = time.perf_counter()
        next_sample = 0.0
        k = 0
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= next_sample:
                samples.append((elapsed, rss_mb(pid)))
                next_sample += 10.0
                if elapsed >= minutes * 60:
                    break
            delay = start + k / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            msg = messages[k % len(messages)]
            msg.frame_number = k
            msg.header.stamp = seconds_to_time(time.time())
            under_test.publisher.publish(msg)
            k += 1
        counters = under_test.counters(time.time())
    finally:
        under_test.close()
    times, values = np.array(samples).T
    after = times >= 60.0
    slope = np.polyfit(times[after], values[after], 1)[0] * 3600 if after.sum() > 2 else math.nan
    print(f"   {method}: ik_node over {minutes:g} min at {rate:g} Hz ({k} frames sent, "
          f"{counters.get('frames_solved')} solved, {counters.get('frames_skipped')} skipped, "
          f"JointState back {under_test.joint_count}): RSS {values[0]:.1f} MB at start, "
          f"{values[after][0] if after.any() else math.nan:.1f} MB after 1 min, "
          f"{values[-1]:.1f} MB at the end; growth after 1 min {slope:+.1f} MB/hour")
    print("   RSS every 10 s (MB): " + " ".join(f"{v:.1f}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="synthetic trajectory length")
    parser.add_argument("--rates", default="100,200,300,500,750,1000,1500")
    parser.add_argument("--step", type=float, default=3.0, help="seconds per rate")
    parser.add_argument("--methods", default="kalman,least_squares")
    parser.add_argument("--skip-ros", action="store_true", help="only the in-process figures")
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES",
                        help="only the memory figures: the solver alone, then ik_node for "
                             "MINUTES at 100 Hz")
    args = parser.parse_args()
    args.methods = args.methods.split(",")
    args.rates = [float(r) for r in args.rates.split(",")]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if args.soak:
        print("Memory (resident set size)")
        for method in args.methods:
            solver_memory(method, 30_000 if method == "kalman" else 10_000)
        for method in args.methods:
            node_memory(method, args.soak)
        return
    solve_times(args)
    if not args.skip_ros:
        for method in args.methods:
            ros_figures(args, method)


if __name__ == "__main__":
    main()
