"""Benchmark: the live view node's CPU, the page's frame rate and the delay to the screen.

    tools/run bench live_view [--channels 16] [--seconds 10] [--browsers 3]
                              [--set PARAM=VALUE]

live_view_node runs in its own process, fed from this process (test/live_feed.py) at 100 Hz:
EMG envelope and raw EMG (--channels at 2 kHz, 20-sample chunks), 16 markers and the 15-DoF
joint states of the Wu model. Headless Chromium (its own processes) opens the page. Per phase,
for --seconds each:
  1. no browser; 2. one browser; 3. one browser with raw EMG; 4. --browsers browsers;
  5. after closing them all.
Prints the node's CPU (% of one core, /proc), the page's frames drawn per second and draw time,
and the delay from the node receiving a message to the page having drawn it (and from the
message's stamp, i.e. its publication here, to the drawing). Never passes or fails.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from ros_harness import benchmark_environment  # noqa: E402

benchmark_environment()

from browser import Browser  # noqa: E402
from live_feed import LiveFeed  # noqa: E402
from ros_harness import NodeProcess, RosProbe, process_cpu_seconds  # noqa: E402

PAGE_STATE = ("JSON.stringify({frames: __liveView.frames, drawMs: __liveView.drawMs, "
              "delays: __liveView.delaySamples.splice(0)})")


def summary(values) -> str:
    if not values:
        return "no samples"
    a = np.asarray(values, dtype=float)
    return (f"p50 {np.percentile(a, 50):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  "
            f"max {a.max():6.1f} ms  (n={len(a)})")


def measure(node, pages, seconds: float) -> dict:
    """CPU of the node and, per page, frames drawn and delays over `seconds`."""
    before = [json.loads(p.evaluate(PAGE_STATE)) for p in pages]
    cpu0, t0 = process_cpu_seconds(node.process.pid), time.monotonic()
    draw_ms = []
    end = t0 + seconds
    while time.monotonic() < end:
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        draw_ms += [p.evaluate("__liveView.drawMs") for p in pages]
    cpu1, t1 = process_cpu_seconds(node.process.pid), time.monotonic()
    after = [json.loads(p.evaluate(PAGE_STATE)) for p in pages]
    elapsed = t1 - t0
    fps = [(a["frames"] - b["frames"]) / elapsed for a, b in zip(after, before)]
    delays = [d for a in after for d in a["delays"]]
    return {"cpu": 100 * (cpu1 - cpu0) / elapsed, "fps": fps, "draw_ms": draw_ms,
            "receive": [d["receive_ms"] for d in delays if d["stream"] == "envelope"],
            "capture": [d["capture_ms"] for d in delays if d["stream"] == "envelope"
                        and d["capture_ms"] is not None],
            "markers": [d["receive_ms"] for d in delays if d["stream"] == "markers"]}


def report(label: str, result: dict) -> None:
    fps = ", ".join(f"{f:.1f}" for f in result["fps"]) or "-"
    print(f"{label}\n  node CPU {result['cpu']:5.1f} % of one core;  page frames/s: {fps}")
    if result["fps"]:
        print(f"  draw time {summary(result['draw_ms'])}")
        print(f"  envelope received by node -> drawn  {summary(result['receive'])}")
        print(f"  envelope stamp (publication) -> drawn {summary(result['capture'])}")
        print(f"  markers received by node -> drawn   {summary(result['markers'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--browsers", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="a node parameter (YAML value), e.g. viz_markers_topic=''")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} (before start)")
    params = {"port": 0, "model_path": "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"}
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        params[name] = yaml.safe_load(value)
    with RosProbe("bench_feed") as probe, \
            NodeProcess("biosig_ros.nodes.live_view_node", "live_view", params) as node:
        if not node.wait_for_output("ready:", 60):
            print("live_view did not start:\n" + node.output())
            return
        url = re.search(r"http://127\.0\.0\.1:\d+/", node.output()).group(0)
        feed = LiveFeed(probe, channels=args.channels).start()
        time.sleep(3.0)  # discovery and warm-up
        print(f"live_view at {url}, fed {args.channels} EMG channels at 2 kHz in 100 Hz chunks "
              f"(envelope + raw), 16 markers and 15 DoF at 100 Hz; {args.seconds:.0f} s per "
              "phase")
        report("1. no browser", measure(node, [], args.seconds))
        with Browser() as browser:
            pages = [browser.open(url)]
            pages[0].wait_for("window.__liveView && __liveView.frames > 5", 60)
            time.sleep(1.0)
            report("2. one browser", measure(node, pages, args.seconds))
            pages[0].evaluate("document.getElementById('raw-toggle').click()")
            pages[0].wait_for("__liveView.charts['raw/M01']", 30)
            report("3. one browser, raw EMG shown", measure(node, pages, args.seconds))
            pages[0].evaluate("document.getElementById('raw-toggle').click()")
            for _ in range(args.browsers - 1):
                pages.append(browser.open(url))
            for page in pages:
                page.wait_for("window.__liveView && __liveView.frames > 5", 60)
            report(f"4. {len(pages)} browsers", measure(node, pages, args.seconds))
        report("5. browsers closed", measure(node, [], args.seconds))
        feed.stop()
        print(f"feed: {feed.messages} x 4 messages sent; node alive: {node.alive()}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
