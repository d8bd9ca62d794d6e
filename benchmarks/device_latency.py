"""Device nodes end to end: latency and sustained rate, node in its own process.

Trigno: trigno_sim (a thread here, synthetic EMG, 16 channels by default) -> trigno_emg_node
(own process) -> a subscriber here. Latency = arrival of a /emg/raw message - the time the
simulator sent the frame holding the message's last sample. Sustained rate = samples received
per second over --duration, with gaps and CPU time of the node process.
Vicon, both paths in the same run, on one recording of --markers markers at 100 Hz (abd.bio's
16 markers tiled with offsets): (1) Vicon's own client library (backend sdk, the build of
tools/bootstrap.sh) in vicon_markers_node (own process) against vicon_wire_sim (a thread here,
Vicon's wire protocol on TCP); latency = arrival of a /markers message - the simulator's time
of that frame (it sends a frame when its time comes); (2) the old path: the API stand-in
(backend simulator) inside the node; latency = arrival - header.stamp (the stand-in's frame
time). Frames lost = gaps in the frame numbers received (reliable subscription).

    tools/run bench device_latency [--duration 60] [--channels 16] [--publish-rate 0]
                                   [--vicon-duration 60] [--markers 40]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from ros_harness import benchmark_environment  # noqa: E402

benchmark_environment()

from biosig_ros.devices.trigno_simulator import (SimulatorSettings, TrignoSimulator,  # noqa: E402
                                                 synthetic_source)
from biosig_ros.msg import MarkerSet, SignalChunk  # noqa: E402
from biosig_ros.ros.conversions import time_to_seconds  # noqa: E402
from ros_harness import NodeProcess, RosProbe, process_cpu_seconds  # noqa: E402



def percentiles(values_ms: list[float]) -> str:
    if not values_ms:
        return "no samples"
    a = np.asarray(values_ms)
    return (f"p50 {np.percentile(a, 50):.2f} ms, p99 {np.percentile(a, 99):.2f} ms, "
            f"max {a.max():.2f} ms (n={len(a)})")


def bench_trigno(duration: float, channels: int, publish_rate: float) -> None:
    sent: dict[int, float] = {}
    sent_lock = threading.Lock()

    def on_frame(_number, first, _count, when):
        with sent_lock:
            sent[first] = when

    sim = TrignoSimulator(synthetic_source(channels), SimulatorSettings.from_port_base(0),
                          on_frame=on_frame).start()
    received: list[tuple[float, int, int]] = []
    params = dict(command_port=sim.ports["command"], emg_port=sim.ports["emg"],
                  sensor_slots=list(range(1, channels + 1)), publish_rate=publish_rate)
    try:
        with RosProbe("bench_probe") as probe, \
                NodeProcess("biosig_ros.nodes.trigno_emg_node", "trigno_emg", params) as node:
            def on_message(msg):
                received.append((time.time(), msg.first_sample_index, msg.sample_count))

            from biosig_ros.ros.qos import sensor_qos
            probe.node.create_subscription(SignalChunk, "/emg/raw", on_message, sensor_qos(1000))
            if not probe.wait_until(lambda: len(received) > 10, 60):
                print("no /emg/raw received:\n" + node.output())
                return
            time.sleep(1.0)                                  # warm-up
            start_count = len(received)
            cpu0, t0 = process_cpu_seconds(node.process.pid), time.monotonic()
            sent_before = sim.frames_sent
            time.sleep(duration)
            cpu1, t1 = process_cpu_seconds(node.process.pid), time.monotonic()
            window = received[start_count:]
            sent_frames = sim.frames_sent - sent_before
    finally:
        sim.stop()
    latencies = []
    with sent_lock:
        for arrival, first, count in window:
            last = first + count - 1
            frame_first = last - last % 27
            if frame_first in sent:
                latencies.append((arrival - sent[frame_first]) * 1e3)
    samples = sum(count for _, _, count in window)
    gaps = sum(1 for a, b in zip(window, window[1:]) if b[1] != a[1] + a[2])
    span = window[-1][0] - window[0][0] if len(window) > 1 else float("nan")
    chunk = "one chunk per 13.5 ms frame" if publish_rate == 0 else \
        f"chunks of {round(2000 / publish_rate)} samples ({publish_rate:g} Hz)"
    print(f"Trigno EMG, {channels} channels at 2000 Hz, {chunk}, over {duration:g} s:")
    print(f"  latency frame sent -> /emg/raw received: {percentiles(latencies)}")
    # The first message opens the time span; its samples were acquired before it.
    rate = (samples - window[0][2]) / span
    print(f"  sustained rate: {rate:.1f} samples/s per channel "
          f"({rate * channels:.0f} values/s); {len(window)} messages, "
          f"{samples} samples of {sent_frames * 27} sent, {gaps} index gaps")
    print(f"  node CPU: {100 * (cpu1 - cpu0) / (t1 - t0):.1f} % of one core")


def tiled_markers(count: int) -> np.ndarray:
    """abd.bio's markers (3 x 16 x frames, mm) tiled with 100 mm offsets to `count` markers."""
    from biosig_ros.io.bio_file import load_bio

    base = load_bio(ROOT / "data" / "abd.bio")["markers"]
    copies = [base + 100.0 * k for k in range(-(-count // base.shape[1]))]
    return np.concatenate(copies, axis=1)[:, :count]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_bio(path: Path, markers: np.ndarray) -> None:
    import pickle

    with open(path, "wb") as out:
        pickle.dump({"markers": markers}, out)


def collect_markers(params: dict, duration: float, label: str):
    """Run the node with params; [(arrival, stamp, frame number)] over `duration` after a
    warm-up, and the node's CPU %; None when nothing came."""
    from biosig_ros.ros.qos import output_qos

    received: list[tuple[float, float, int]] = []
    with RosProbe(f"bench_probe_{label}") as probe, \
            NodeProcess("biosig_ros.nodes.vicon_markers_node", "vicon_markers", params) as node:
        def on_message(msg):
            received.append((time.time(), time_to_seconds(msg.header.stamp), msg.frame_number))

        probe.node.create_subscription(MarkerSet, "/markers", on_message, output_qos(1000))
        if not probe.wait_until(lambda: len(received) > 10, 60):
            print(f"no /markers received ({label}):\n" + node.output())
            return None
        time.sleep(2.0)                                      # warm-up
        start_count = len(received)
        cpu0, t0 = process_cpu_seconds(node.process.pid), time.monotonic()
        time.sleep(duration)
        cpu1, t1 = process_cpu_seconds(node.process.pid), time.monotonic()
        backend = next((line.split("Vicon client: ", 1)[1] for line in node.output().splitlines()
                        if "Vicon client: " in line), "?")
        return received[start_count:], 100 * (cpu1 - cpu0) / (t1 - t0), backend


def report_vicon(title: str, window, cpu: float, latencies: list[float]) -> None:
    numbers = [n for _, _, n in window]
    lost = sum(b - a - 1 for a, b in zip(numbers, numbers[1:]) if b > a + 1)
    span = window[-1][0] - window[0][0]
    print(title)
    print(f"  latency: {percentiles(latencies)}")
    print(f"  rate {(len(window) - 1) / span:.1f} frames/s, {len(window)} frames, {lost} frames "
          f"lost (frame-number gaps); node CPU {cpu:.1f} % of one core; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)


def bench_vicon(duration: float, marker_count: int, scratch: Path) -> None:
    recording = scratch / f"markers{marker_count}.bio"
    write_bio(recording, tiled_markers(marker_count))
    names = [f"M{i:02d}" for i in range(1, marker_count + 1)]
    print(f"Vicon markers, {marker_count} markers at 100 Hz, {duration:g} s per path "
          f"(load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}):", flush=True)

    # The simulator in its own process, as a Vicon PC would be: in this process it would share
    # the interpreter with the subscriber, and the SDK's network latency estimate (ping round
    # trips the simulator answers) would grow with it.
    port, epoch = free_port(), time.time()
    sim = NodeProcess("biosig_ros.devices.vicon_wire.cli", "vicon_wire_sim", ros=False, args=[
        str(recording), "--subject", "bench", "--port", str(port), "--epoch", repr(epoch),
        "--marker-names", ",".join(names), "--no-analog"])
    try:
        if not sim.wait_for_output("listening on", 60):
            print("vicon_wire_sim did not start:\n" + sim.output())
            return
        collected = collect_markers(dict(backend="sdk", host=f"127.0.0.1:{port}"), duration,
                                    "sdk")
    finally:
        sim.stop()
    if collected:
        window, cpu, backend = collected
        report_vicon(f" (1) Vicon's library through the wire simulator [{backend}]\n"
                     f"     simulator frame -> /markers received:", window, cpu,
                     [(arrival - (epoch + (n - 1) / 100.0)) * 1e3 for arrival, _, n in window])
        print(f"     (header.stamp -> received: "
              f"{percentiles([(a - s) * 1e3 for a, s, _ in window])})")

    collected = collect_markers(dict(
        backend="simulator", sim_recording=str(recording), sim_subject="bench",
        sim_marker_names=names, sim_frame_rate=100.0, analog_device=""), duration, "standin")
    if collected:
        window, cpu, backend = collected
        report_vicon(" (2) old path: API stand-in inside the node\n"
                     "     frame time (header.stamp) -> /markers received:", window, cpu,
                     [(arrival - stamp) * 1e3 for arrival, stamp, _ in window])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of sustained Trigno streaming to measure (default 60)")
    parser.add_argument("--channels", type=int, default=16, help="EMG channels (default 16)")
    parser.add_argument("--publish-rate", type=float, default=0.0,
                        help="trigno_emg publish_rate (default 0: one chunk per frame)")
    parser.add_argument("--vicon-duration", type=float, default=60.0,
                        help="seconds of Vicon measurement per path (0 skips it; default 60)")
    parser.add_argument("--markers", type=int, default=40,
                        help="Vicon markers per frame (default 40)")
    parser.add_argument("--skip-trigno", action="store_true", help="only the Vicon part")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (a machine shared with other "
          f"work: figures are upper bounds)", flush=True)
    if not args.skip_trigno:
        bench_trigno(args.duration, args.channels, args.publish_rate)
    if args.vicon_duration > 0:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench_vicon_") as scratch:
            bench_vicon(args.vicon_duration, args.markers, Path(scratch))


if __name__ == "__main__":
    main()
