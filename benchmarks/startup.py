"""Start-up: seconds from the command to the first envelope and the first joint state.

Starts `python -m biosig_ros.graph demo` (the whole demo graph, as `tools/run demo` does) and
a subscriber here, and times the first /emg/raw, /emg/envelope, /markers and /ik/joint_states
message and each node's "ready" line from the moment the command was started. On a shared
machine these wall times follow the load; --cpu also starts each node alone and prints the CPU
seconds it used until ready (imports and construction: what start-up work costs, whatever the
load), --root DIR taking the code from another checkout (for before/after figures). --imports
prints the slowest imports of each node module (`python -X importtime`, cumulative).

    tools/run bench startup [--runs 3] [--cpu] [--root DIR] [--imports] [--timeline]
                            [--set NODE.PARAM=VALUE]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from ros_harness import isolate_ros_graph  # noqa: E402

# The graph as `tools/run demo` starts it: the runner's localhost profile, a domain of its own.
isolate_ros_graph()

from sensor_msgs.msg import JointState  # noqa: E402

from biosig_ros.msg import MarkerSet, SignalChunk  # noqa: E402
from ros_harness import RosProbe, process_cpu_seconds  # noqa: E402

TOPICS = (("/emg/raw", SignalChunk), ("/emg/envelope", SignalChunk), ("/markers", MarkerSet),
          ("/ik/joint_states", JointState))
READY = {"emg_processing": "ready:", "ik": "ready:", "replay": "consumers ready",
         "bridge": "serving"}
NODE_MODULES = ("biosig_ros.nodes.replay_node", "biosig_ros.nodes.emg_processing_node",
                "biosig_ros.nodes.ik_node", "biosig_ros.nodes.bridge_node")


CONSUMERS = (("/emg/raw", "emg_processing"), ("/markers", "ik"))


def watch_graph(probe: RosProbe, firsts: dict[str, float], since: float) -> None:
    """--timeline: when this process's ROS graph first shows each consumer's node name, and
    its subscription by name (what the replay waits for), and each new subscriber count."""
    now = time.monotonic() - since
    names = set(probe.node.get_node_names())
    for topic, consumer in CONSUMERS:
        if consumer in names:
            firsts.setdefault(f"graph: node {consumer}", now)
        infos = probe.node.get_subscriptions_info_by_topic(topic)
        firsts.setdefault(f"graph: {topic} {len(infos)} subscriber(s)", now)
        if any(info.node_name == consumer for info in infos):
            firsts.setdefault(f"graph: {consumer} subscribed to {topic}", now)


def one_run(probe: RosProbe, extra: list[str], timeout: float,
            timeline: bool = False) -> dict[str, float]:
    """Seconds from the start of the command to each first message / ready line."""
    firsts: dict[str, float] = {}
    received = {topic: probe.subscribe(kind, topic) for topic, kind in TOPICS}
    started, started_wall = time.monotonic(), time.time()
    graph = subprocess.Popen(
        [sys.executable, "-u", "-m", "biosig_ros.graph", "demo", "--set", "bridge.port=0",
         "--set", "bridge.record_on_start=false", *extra], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, encoding="utf-8", errors="replace", start_new_session=True)

    def read_output():
        for line in graph.stdout:
            for node, text in READY.items():
                if line.startswith(f"[{node}]") and text in line:
                    firsts.setdefault(f"{node} ready", time.monotonic() - started)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    deadline = started + timeout
    while time.monotonic() < deadline and len([t for t, _ in TOPICS if t in firsts]) < len(TOPICS):
        for topic, messages in received.items():
            if messages and topic not in firsts:
                firsts[topic] = messages[0][0] - started_wall  # arrival time (time.time())
        if timeline:
            watch_graph(probe, firsts, started)
        time.sleep(0.01)
    graph.send_signal(signal.SIGINT)
    try:
        graph.wait(timeout=30)
    except subprocess.TimeoutExpired:
        graph.kill()
        graph.wait()
    reader.join(timeout=5)
    return firsts


NODES = (("replay_node", "replay", "replay_abd.yaml", "playing"),
         ("emg_processing_node", "emg_processing", "emg_processing.yaml", "ready:"),
         ("ik_node", "ik", "ik_wu.yaml", "ready:"),
         ("bridge_node", "bridge", "bridge.yaml", "serving"))


def cpu_to_ready(root: Path, module: str, name: str, config: str, text: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) a node started alone uses until it logs `text`."""
    started = time.monotonic()
    node = subprocess.Popen(
        [sys.executable, "-u", "-m", f"biosig_ros.nodes.{module}", "--ros-args", "-r",
         f"__node:={name}", "--params-file", str(ROOT / "config" / config), "-p", "port:=0",
         "-p", "record_on_start:=false"] if name == "bridge" else
        [sys.executable, "-u", "-m", f"biosig_ros.nodes.{module}", "--ros-args", "-r",
         f"__node:={name}", "--params-file", str(ROOT / "config" / config)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8",
        errors="replace")
    cpu = wall = float("nan")
    for line in node.stdout:
        if text in line:
            wall = time.monotonic() - started
            cpu = process_cpu_seconds(node.pid)
            break
    node.terminate()
    node.wait(timeout=30)
    return cpu, wall


def slowest_imports(module: str, count: int = 6) -> list[tuple[float, str]]:
    """[(seconds, module)] then the slowest packages (no dot in the name) it imports, at any
    depth, with what they import in turn."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace")
    rows = []  # (cumulative seconds, name as printed: indentation = nesting)
    for line in result.stderr.splitlines():
        parts = line[len("import time:"):].split("|") if line.startswith("import time:") else []
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]) * 1e-6, parts[2].rstrip()))
    total = next((seconds for seconds, name in rows if name.strip() == module), float("nan"))
    packages = [(seconds, name.strip()) for seconds, name in rows
                if "." not in name and name.strip() not in ("site", "encodings")]
    return [(total, module)] + sorted(packages, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--imports", action="store_true")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--timeline", action="store_true",
                        help="also when this process's ROS graph shows each consumer")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="source checkout whose biosig_ros the --cpu nodes run")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    args = parser.parse_args()
    extra = [word for assignment in args.set for word in ("--set", assignment)]
    if args.imports:
        for module in NODE_MODULES:
            rows = slowest_imports(module)
            print(f"import {module}: {rows[0][0]:.2f} s; slowest: "
                  + ", ".join(f"{name} {seconds:.2f} s" for seconds, name in rows[1:]))
    if args.cpu:
        for module, name, config, text in NODES:
            figures = [cpu_to_ready(args.root, module, name, config, text)
                       for _ in range(args.runs)]
            cpu = [c for c, _ in figures]
            print(f"{name:16s} alone: CPU to ready {np.median(cpu):.2f} s (min {min(cpu):.2f}), "
                  f"wall {np.median([w for _, w in figures]):.2f} s", flush=True)
    results = []
    with RosProbe("startup_probe") as probe:
        for run in range(args.runs):
            firsts = one_run(probe, extra, args.timeout, args.timeline)
            results.append(firsts)
            print(f"run {run + 1}: " + ", ".join(f"{name} {seconds:.2f} s"
                                                 for name, seconds in sorted(
                                                     firsts.items(), key=lambda kv: kv[1])),
                  flush=True)
    names = sorted({name for firsts in results for name in firsts})
    print(f"median of {args.runs} runs (seconds from the command; load average "
          f"{os.getloadavg()[0]:.1f}):")
    for name in sorted(names, key=lambda n: np.median([r.get(n, np.inf) for r in results])):
        values = [r[name] for r in results if name in r]
        missing = len(results) - len(values)
        print(f"  {name:24s} {np.median(values):6.2f} s (min {min(values):.2f}, "
              f"max {max(values):.2f}){f'; missing in {missing} run(s)' if missing else ''}")


if __name__ == "__main__":
    main()
