"""A biosiglive 2.0.3 server as a source: the rate it sustains against biosiglive's own Server.

biosiglive's `Server` (installed in the venv) is fed with known frames (values = sample indices)
at a few feed rates (server loops per second, SAMPLES samples per frame) and served the way
StreamData serves: each request gets the next frame produced after it arrived. Read twice:
- core: BiosigliveSource (ROS-free) in this process, one chunk per frame;
- node: biosiglive_source_node in its own process, a subscriber here.
Printed per feed rate: frames/s and samples/s received vs fed, frames lost as the source
estimates them (index gaps) and as they really were (value gaps), reply latency p50/p99
(core: request sent -> reply decoded; node: server's reply sent -> message received), and the
load average. Figures only: nothing passes or fails.

    tools/run bench biosiglive_source [--seconds 3] [--rates 100 500 1000 2000] [--no-node]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from ros_harness import benchmark_environment  # noqa: E402

benchmark_environment()

from biosig_ros.devices.biosiglive_source import (BiosigliveSource,  # noqa: E402
                                                  BiosigliveSourceSettings)
from biosig_ros.msg import SignalChunk  # noqa: E402
from biosig_ros.ros.conversions import msg_to_chunk  # noqa: E402
from biosiglive_feed import SAMPLES, FeedingServer  # noqa: E402
from ros_harness import NodeProcess, RosProbe, wait_until  # noqa: E402
from test_trigno_node import free_ports  # noqa: E402


class TimedSource(BiosigliveSource):
    """BiosigliveSource recording each request's round trip (sent -> reply decoded)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.round_trips: list[float] = []

    def _request(self):
        t0 = time.perf_counter()
        rows = super()._request()
        self.round_trips.append(time.perf_counter() - t0)
        return rows


def ms(values: list[float]) -> str:
    if not values:
        return "no replies"
    a = 1e3 * np.asarray(values)
    return f"p50 {np.percentile(a, 50):.2f} ms, p99 {np.percentile(a, 99):.2f} ms (n={len(a)})"


def losses(chunks: list) -> tuple[int, int]:
    """(frames lost by the source's estimate, frames really missed) over consecutive chunks."""
    estimated = sum(b.first_sample_index - a.next_sample_index for a, b in zip(chunks, chunks[1:]))
    missed = sum(b.data[0, 0] - a.data[-1, 0] - 1 for a, b in zip(chunks, chunks[1:]))
    return estimated // SAMPLES, int(missed) // SAMPLES


def report(label: str, rate: float, chunks: list, span: float, fed: int, latency: str) -> None:
    samples = sum(c.sample_count for c in chunks)
    estimated, missed = losses(chunks)
    print(f"  {label}: {len(chunks) / span:7.1f} frames/s, {samples / span:8.0f} samples/s "
          f"received (fed {fed / span:.1f} frames/s = {fed * SAMPLES / span:.0f} samples/s); "
          f"frames lost: estimated {estimated}, really {missed} of {fed}; latency {latency}",
          flush=True)


def settings_for(port: int, rate: float) -> dict:
    return dict(port=port, channel_names=["a", "b"], sample_rate=float(rate * SAMPLES),
                publish_rate=0.0, reply_timeout=2.0)


def bench_core(rate: float, seconds: float) -> None:
    port = free_ports(1)[0]
    server = FeedingServer(port, rate)
    got: list = []
    source = TimedSource(BiosigliveSourceSettings(**settings_for(port, rate)), got.append)
    source.start()
    try:
        if not wait_until(lambda: len(got) >= 2, 20):
            print("  core: no data within 20 s", flush=True)
            return
        n0, f0, r0, t0 = len(got), server.frame, len(source.round_trips), time.monotonic()
        time.sleep(seconds)
        n1, f1, t1 = len(got), server.frame, time.monotonic()
        trips = source.round_trips[r0:]
    finally:
        source.stop()
        server.close()
    report("core", rate, got[n0:n1], t1 - t0, f1 - f0, "request -> reply " + ms(trips))


def bench_node(rate: float, seconds: float) -> None:
    port = free_ports(1)[0]
    server = FeedingServer(port, rate)
    params = dict(settings_for(port, rate), topic="legacy/emg")
    try:
        with RosProbe("bench_probe") as probe, NodeProcess(
                "biosig_ros.nodes.biosiglive_source_node", "biosiglive_source", params) as node:
            received = probe.subscribe(SignalChunk, "/legacy/emg")
            if not probe.wait_until(lambda: len(received) >= 2, 60):
                print(f"  node: no message within 60 s\n{node.output()[-2000:]}", flush=True)
                return
            n0, f0, t0 = len(received), server.frame, time.monotonic()
            time.sleep(seconds)
            n1, f1, t1 = len(received), server.frame, time.monotonic()
            window = list(received)[n0:n1]
    finally:
        server.close()
    chunks = [msg_to_chunk(m) for _, m in window]
    delays = []
    for (arrival, _), chunk in zip(window, chunks):
        sent = server.sent.get(int(chunk.data[-1, 0]) // SAMPLES)
        if sent is not None:
            delays.append(arrival - sent)
    report("node", rate, chunks, t1 - t0, f1 - f0, "server reply sent -> message " + ms(delays))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured s per point (3)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 500, 1000, 2000],
                        help="server feed rates, frames/s (default 100 500 1000 2000)")
    parser.add_argument("--no-node", action="store_true", help="core only (no ROS process)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {SAMPLES} samples per frame, "
          f"{args.seconds:g} s per point", flush=True)
    for rate in args.rates:
        print(f"feed {rate:g} frames/s ({rate * SAMPLES:g} samples/s):", flush=True)
        bench_core(rate, args.seconds)
        if not args.no_node:
            bench_node(rate, args.seconds)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
