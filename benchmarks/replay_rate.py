"""Benchmark: the replayed EMG sample rate against nominal, measured in another process.

    tools/run bench replay_rate [--duration 60] [--speed 1.0]

Starts replay_node on data/abd.bio (looped) in its own process, receives /emg/raw here and
prints the sample rate by arrival time and by header stamps, its deviation from nominal, and
index gaps. Target: within 0.1 % over 60 s, no gaps. Prints figures; never passes or fails.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))

from biosig_ros.msg import SignalChunk  # noqa: E402
from biosig_ros.ros.conversions import time_to_seconds  # noqa: E402
from biosig_ros.stream_stats import StreamStats  # noqa: E402
from ros_harness import NodeProcess, RosProbe, isolate_ros_graph  # noqa: E402

NOMINAL = 2000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to measure")
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    isolate_ros_graph()

    probe = RosProbe("replay_rate_bench")
    received = probe.subscribe(SignalChunk, "/emg/raw")
    replay = NodeProcess("biosig_ros.nodes.replay_node", "replay",
                         {"file": "data/abd.bio", "loop": True, "speed": args.speed,
                          "wait_for_subscribers": 1, "markers_key": ""})
    try:
        if not probe.wait_until(lambda: len(received) > 0, timeout=60):
            sys.exit(f"no data from replay_node:\n{replay.output()}")
        time.sleep(args.duration + 0.05)
    finally:
        replay.stop()
        probe.close()

    messages = list(received)
    stats = StreamStats()
    for _, msg in messages:
        stats.update(msg.first_sample_index, msg.sample_count)
    first_arrival, first = messages[0]
    last_arrival, last = messages[-1]
    # Samples after the first chunk, over the time between the first and last arrival.
    samples = last.first_sample_index + last.sample_count - (first.first_sample_index + first.sample_count)
    arrival_rate = samples / (last_arrival - first_arrival)
    stamp_span = time_to_seconds(last.header.stamp) - time_to_seconds(first.header.stamp)
    stamp_rate = (last.first_sample_index - first.first_sample_index) / stamp_span
    nominal = NOMINAL * args.speed
    print(f"replay_rate: {args.duration:.0f} s of data/abd.bio EMG (10 ch, nominal "
          f"{nominal:g} samples/s, 20-sample chunks), speed x{args.speed:g}")
    print(f"  chunks received       {len(messages)}")
    print(f"  rate by arrival time  {arrival_rate:10.3f} samples/s  "
          f"({(arrival_rate / nominal - 1) * 100:+.4f} % vs nominal)")
    print(f"  rate by header stamps {stamp_rate:10.3f} samples/s  "
          f"({(stamp_rate / nominal - 1) * 100:+.4f} % vs nominal)")
    print(f"  index gaps            {stats.gaps} ({stats.missing_samples} samples missing), "
          f"out of order {stats.out_of_order}")
    print("  target: within 0.1 % over 60 s, no index gaps")


if __name__ == "__main__":
    main()
