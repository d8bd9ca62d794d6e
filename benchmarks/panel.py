"""Benchmark: the operator panel's CPU and frames per second under a live feed.

    tools/run bench panel [--channels 16] [--seconds 20] [--refresh-rate 30] [--warm-up 10]

`biosig_ros_panel` runs in its own process on Qt's off-screen platform (it still renders every
frame into its window's buffer, in software, as on an X display without GPU), fed from this
process at 100 Hz (test/live_feed.py): EMG envelope and raw EMG (--channels at 2 kHz,
20-sample chunks), 16 markers and the 15-DoF joint states of the Wu model. After --warm-up
seconds, for --seconds: the panel's CPU (% of one core, user + system, /proc) and the frames
it drew per second (timer ticks that drew new data), with the median time of taking the
snapshot and updating the plots. Goal (issue 23): 30 frames/s at <= 15 % of a core. Prints
the load average: on a shared machine the figures move with it. Never passes or fails.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from ros_harness import benchmark_environment  # noqa: E402

benchmark_environment()

from live_feed import LiveFeed  # noqa: E402
from ros_harness import RosProbe, process_cpu_seconds  # noqa: E402

STATS = re.compile(r"stats: ticks (\d+) draws (\d+) draw_ms_p50 ([\d.]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=10.0)
    parser.add_argument("--refresh-rate", type=float, default=30.0)
    args = parser.parse_args()

    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    load_before = os.getloadavg()
    with RosProbe("panel_bench_feed") as probe:
        feed = LiveFeed(probe, channels=args.channels, envelope_unit="").start()
        panel = subprocess.Popen(
            [sys.executable, "-u", "-m", "biosig_ros.nodes.panel_app", "--namespace", "/",
             "--refresh-rate", str(args.refresh_rate), "--stats-every", "1"],
            cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            encoding="utf-8", errors="replace")
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(panel.stdout), daemon=True).start()

        def latest():
            for line in reversed(list(lines)):
                found = STATS.search(line)
                if found:
                    return int(found.group(1)), int(found.group(2)), float(found.group(3))
            return None

        try:
            time.sleep(args.warm_up)
            first = latest()
            cpu0, t0 = process_cpu_seconds(panel.pid), time.monotonic()
            time.sleep(args.seconds)
            last = latest()
            cpu1, t1 = process_cpu_seconds(panel.pid), time.monotonic()
        finally:
            panel.send_signal(2)
            try:
                panel.wait(timeout=20)
            except subprocess.TimeoutExpired:
                panel.kill()
            feed.stop()
    load_after = os.getloadavg()
    elapsed = t1 - t0
    print(f"panel: {args.channels} EMG channels (envelope + raw at 2 kHz), 16 markers and "
          f"15-DoF joint states, at 100 messages/s each; refresh {args.refresh_rate:g}/s; "
          f"{elapsed:.1f} s measured after {args.warm_up:g} s")
    print(f"  CPU: {100.0 * (cpu1 - cpu0) / elapsed:.1f} % of one core")
    if first and last:
        print(f"  frames drawn: {(last[1] - first[1]) / elapsed:.1f} /s "
              f"(timer ticks {(last[0] - first[0]) / elapsed:.1f} /s), snapshot + plot update "
              f"median {last[2]:.2f} ms")
    else:
        print("  frames: the panel printed no statistics (did it start?)")
    print(f"  load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
          f"({os.cpu_count()} CPUs; the machine was shared with other sessions' work)")


if __name__ == "__main__":
    main()
