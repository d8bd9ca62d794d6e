"""Benchmark: a soak of the simulated_devices graph (Trigno and Vicon simulators -> device nodes
-> EMG processing, IK, bridge recording), as a lab session runs for hours.

    tools/run bench soak [--minutes 60] [--warmup 2] [--sample 10]

Prints, per stream, the samples/frames lost at the source (the nodes' own diagnostics) and at a
subscriber in another process (index gaps); per node, resident memory growth in MB per hour
after the warm-up (least-squares slope of RSS samples) and CPU %; the recording's MB per hour;
the load average. Prints figures; never passes or fails.
"""
import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from biosig_ros.msg import MarkerSet, SignalChunk  # noqa: E402
from biosig_ros.stream_stats import StreamStats  # noqa: E402
from graph_harness import GraphProcess  # noqa: E402
from ros_harness import RosProbe, isolate_ros_graph, process_cpu_seconds  # noqa: E402
from test_qos_outputs import free_port_base  # noqa: E402

STREAMS = {"/emg/raw": SignalChunk, "/markers": MarkerSet, "/emg/envelope": SignalChunk,
           "/ik/joint_states": JointState}
LOSS_KEYS = re.compile(r"missing|dropped|lost|skipped|gaps")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6


def _index(msg):
    if isinstance(msg, SignalChunk):
        return msg.first_sample_index, msg.sample_count
    if isinstance(msg, MarkerSet):
        return msg.frame_number, 1
    return None


class Subscriber:
    """Counts and index gaps per stream, and the newest diagnostics of every node."""

    def __init__(self, probe: RosProbe):
        self.stats = {topic: StreamStats() for topic in STREAMS}
        self.joint_messages = 0
        self.diagnostics: dict[str, dict[str, str]] = {}
        for topic, kind in STREAMS.items():
            probe.node.create_subscription(kind, topic, lambda m, t=topic: self._on(t, m),
                                           _qos())
        probe.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on(self, topic, msg):
        indexed = _index(msg)
        if indexed is None:
            self.joint_messages += 1
            indexed = (self.joint_messages, 1)
        self.stats[topic].update(*indexed)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            self.diagnostics[status.name] = {v.key: v.value for v in status.values}


def _qos():
    from biosig_ros.ros.qos import input_qos
    return input_qos()


def sample_process(pid: int):
    """(rss MB, cpu seconds) of a process, None once it is gone."""
    try:
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text(encoding="utf-8").split()[1])
        return rss_pages * PAGE_MB, process_cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return None


def slope_per_hour(points):
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return float("nan")
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 3600.0


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="measured minutes")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="minutes after the first joint state before measuring")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    isolate_ros_graph()
    record_directory = Path(tempfile.mkdtemp(prefix="biosig_ros-soak-"))
    load_start = os.getloadavg()
    probe = RosProbe("soak_bench")
    subscriber = Subscriber(probe)
    graph = GraphProcess("simulated_devices", "--port", "0", "--record-directory",
                         str(record_directory), "--trigno-port-base", str(free_port_base()))
    # Ctrl-C / SIGTERM end the measurement early and still print what was measured (rclpy's
    # own handler would only shut the probe down).
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if not probe.wait_until(lambda: subscriber.joint_messages > 0, timeout=300):
            sys.exit(f"no joint states from the graph:\n{graph.output()[-3000:]}")
        print(f"running; warm-up {args.warmup:g} min, then {args.minutes:g} min measured",
              flush=True)
        if stop.wait(args.warmup * 60):
            sys.exit("stopped during the warm-up: nothing measured")
        pids = graph.node_pids()
        first = {name: sample_process(pid) for name, pid in pids.items()}
        rss = {name: [] for name in pids}
        start = time.monotonic()
        start_samples = {topic: (s.samples, s.missing_samples) for topic, s in
                         subscriber.stats.items()}
        start_diagnostics = {k: dict(v) for k, v in subscriber.diagnostics.items()}
        start_mb = directory_mb(record_directory)
        end = start + args.minutes * 60
        while time.monotonic() < end and not stop.is_set():
            now = time.monotonic() - start
            for name, pid in pids.items():
                sample = sample_process(pid)
                if sample is not None:
                    rss[name].append((now, sample[0]))
            stop.wait(min(args.sample, max(0.0, end - time.monotonic())))
        if stop.is_set():
            print("stopped early by a signal: the figures cover the time measured", flush=True)
        elapsed = time.monotonic() - start
        last = {name: sample_process(pid) for name, pid in pids.items()}
        end_mb = directory_mb(record_directory)
        report(args, subscriber, start_samples, start_diagnostics, pids, first, last, rss,
               elapsed, end_mb - start_mb, load_start, graph)
    finally:
        graph.stop()
        probe.close()
        shutil.rmtree(record_directory, ignore_errors=True)


def report(args, subscriber, start_samples, start_diagnostics, pids, first, last, rss, elapsed,
           recorded_mb, load_start, graph):
    hours = elapsed / 3600.0
    print(f"\nsoak of simulated_devices: {elapsed / 60:.1f} min measured after "
          f"{args.warmup:g} min warm-up")
    print("\nstream             received   rate/s   missing at a subscriber (index gaps; includes "
          "source losses)")
    for topic, stats in subscriber.stats.items():
        samples = stats.samples - start_samples[topic][0]
        missing = stats.missing_samples - start_samples[topic][1]
        lost = "-" if topic == "/ik/joint_states" else f"{missing} ({stats.gaps} in all)"
        print(f"{topic:<18} {samples:>9}  {samples / elapsed:8.1f}   {lost}")
    print("\nlost at the source (diagnostics counters: at start of measurement -> at end)")
    for name, values in sorted(subscriber.diagnostics.items()):
        before = start_diagnostics.get(name, {})
        counters = [f"{k} {before.get(k, '?')} -> {v}" for k, v in values.items()
                    if LOSS_KEYS.search(k)]
        print(f"  {name:<16} {'; '.join(counters) or '(no loss counters reported)'}")
    print("\nnode               RSS start -> end MB   growth MB/h   CPU %")
    for name in pids:
        if first[name] is None or last[name] is None:
            print(f"{name:<18} (restarted or gone: see the graph output)")
            continue
        cpu = (last[name][1] - first[name][1]) / elapsed * 100.0
        print(f"{name:<18} {first[name][0]:8.1f} -> {last[name][0]:8.1f}   "
              f"{slope_per_hour(rss[name]):+10.2f}   {cpu:5.1f}")
    print(f"\nrecording: {recorded_mb:.1f} MB in {elapsed / 60:.1f} min = "
          f"{recorded_mb / hours:.0f} MB per hour")
    load_end = os.getloadavg()
    print(f"load average (1, 5, 15 min): start {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f}; end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} "
          f"on {os.cpu_count()} CPUs")
    restarts = graph.output().count("[graph] restarting")
    if restarts:
        print(f"graph: {restarts} node restart(s) during the soak (see its output)")


if __name__ == "__main__":
    main()
