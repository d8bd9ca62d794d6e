"""Start-up: seconds from the command to the first envelope and the first joint state.

Starts `python -m biosig_ros.graph demo` (the whole demo graph, as `tools/run demo` does) and
a subscriber here, and times the first /emg/raw, /emg/envelope, /markers and /ik/joint_states
message and each node's "ready" line from the moment the command was started. --imports also
prints the slowest imports of each node module (`python -X importtime`, cumulative).

    tools/run bench startup [--runs 3] [--imports] [--set NODE.PARAM=VALUE ...]
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from sensor_msgs.msg import JointState  # noqa: E402

from biosig_ros.msg import MarkerSet, SignalChunk  # noqa: E402
from ros_harness import RosProbe  # noqa: E402

TOPICS = (("/emg/raw", SignalChunk), ("/emg/envelope", SignalChunk), ("/markers", MarkerSet),
          ("/ik/joint_states", JointState))
READY = {"emg_processing": "ready:", "ik": "ready:", "replay": "consumers ready",
         "bridge": "serving"}
NODE_MODULES = ("biosig_ros.nodes.replay_node", "biosig_ros.nodes.emg_processing_node",
                "biosig_ros.nodes.ik_node", "biosig_ros.nodes.bridge_node")


def one_run(probe: RosProbe, extra: list[str], timeout: float) -> dict[str, float]:
    """Seconds from the start of the command to each first message / ready line."""
    firsts: dict[str, float] = {}
    received = {topic: probe.subscribe(kind, topic) for topic, kind in TOPICS}
    started, started_wall = time.monotonic(), time.time()
    graph = subprocess.Popen(
        [sys.executable, "-u", "-m", "biosig_ros.graph", "demo", "--set", "bridge.port=0",
         "--set", "bridge.record_on_start=false", *extra], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)

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
        time.sleep(0.01)
    graph.send_signal(signal.SIGINT)
    try:
        graph.wait(timeout=30)
    except subprocess.TimeoutExpired:
        graph.kill()
        graph.wait()
    reader.join(timeout=5)
    return firsts


def slowest_imports(module: str, count: int = 6) -> list[tuple[float, str]]:
    """(cumulative seconds, package) of the slowest top-level imports of module."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            cwd=ROOT, capture_output=True, text=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if cumulative.isdigit() and not name.startswith(" ") and "." not in name.strip():
            rows.append((int(cumulative) * 1e-6, name.strip()))
    total = next((int(c) * 1e-6 for c, n in
                  ((p.split("|")[1].strip(), p.split("|")[2].strip())
                   for p in result.stderr.splitlines() if p.startswith("import time:"))
                  if n == module and c.isdigit()), float("nan"))
    return [(total, module)] + sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--imports", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    args = parser.parse_args()
    extra = [word for assignment in args.set for word in ("--set", assignment)]
    if args.imports:
        for module in NODE_MODULES:
            rows = slowest_imports(module)
            print(f"import {module}: {rows[0][0]:.2f} s; slowest: "
                  + ", ".join(f"{name} {seconds:.2f} s" for seconds, name in rows[1:]))
    results = []
    with RosProbe("startup_probe") as probe:
        for run in range(args.runs):
            firsts = one_run(probe, extra, args.timeout)
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
