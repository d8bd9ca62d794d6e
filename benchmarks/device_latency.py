"""Device nodes end to end: latency and sustained rate, node in its own process.

Trigno: trigno_sim (a thread here, synthetic EMG, 16 channels by default) -> trigno_emg_node
(own process) -> a subscriber here. Latency = arrival of a /emg/raw message - the time the
simulator sent the frame holding the message's last sample. Sustained rate = samples received
per second over --duration, with gaps and CPU time of the node process.
Vicon: vicon_markers_node with the simulator backend (own process) -> a subscriber here.
Latency = arrival of a /markers message - the frame's capture time (header.stamp).

    tools/run bench device_latency [--duration 60] [--channels 16] [--publish-rate 0]
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


def bench_vicon(duration: float) -> None:
    received: list[tuple[float, float, int]] = []
    params = dict(backend="simulator", sim_recording=str(ROOT / "data" / "abd.bio"),
                  sim_subject="abd", analog_device="")
    with RosProbe("bench_probe_vicon") as probe, \
            NodeProcess("biosig_ros.nodes.vicon_markers_node", "vicon_markers", params) as node:
        def on_message(msg):
            received.append((time.time(), time_to_seconds(msg.header.stamp), msg.frame_number))

        from biosig_ros.ros.qos import sensor_qos
        probe.node.create_subscription(MarkerSet, "/markers", on_message, sensor_qos(1000))
        if not probe.wait_until(lambda: len(received) > 10, 60):
            print("no /markers received:\n" + node.output())
            return
        time.sleep(1.0)
        start_count = len(received)
        cpu0, t0 = process_cpu_seconds(node.process.pid), time.monotonic()
        time.sleep(duration)
        cpu1, t1 = process_cpu_seconds(node.process.pid), time.monotonic()
        window = received[start_count:]
    latencies = [(arrival - stamp) * 1e3 for arrival, stamp, _ in window]
    numbers = [n for _, _, n in window]
    dropped = sum(b - a - 1 for a, b in zip(numbers, numbers[1:]) if b > a + 1)
    span = window[-1][0] - window[0][0]
    print(f"Vicon markers (simulator backend, 16 markers at 100 Hz), over {duration:g} s:")
    print(f"  latency frame captured -> /markers received: {percentiles(latencies)}")
    print(f"  rate {(len(window) - 1) / span:.1f} frames/s, {dropped} frames dropped; "
          f"node CPU {100 * (cpu1 - cpu0) / (t1 - t0):.1f} % of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of sustained Trigno streaming to measure (default 60)")
    parser.add_argument("--channels", type=int, default=16, help="EMG channels (default 16)")
    parser.add_argument("--publish-rate", type=float, default=0.0,
                        help="trigno_emg publish_rate (default 0: one chunk per frame)")
    parser.add_argument("--vicon-duration", type=float, default=10.0,
                        help="seconds of Vicon measurement (0 skips it; default 10)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    bench_trigno(args.duration, args.channels, args.publish_rate)
    if args.vicon_duration > 0:
        bench_vicon(args.vicon_duration)


if __name__ == "__main__":
    main()
