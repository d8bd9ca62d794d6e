"""EMG processing: CPU per second of signal against biosiglive, and the latency the node adds
over a bare relay, across processes. Prints figures; passes or fails nothing.

    tools/run bench emg_processing [--channels 16] [--seconds 10] [--latency-seconds 10]

1. CPU: 16 channels at 2 kHz (data/abd.bio's 10 channels, repeated to 16 and looped) in
   20-sample chunks. biosiglive 2.0.3's RealTimeProcessing.process_emg with its defaults
   (one envelope value per chunk), the biosiglive-compatible mode (same calls; identical
   output is checked on every call), and the streaming core with the same settings (band-pass
   10-425 Hz order 5, centring over 2000 samples, rectification, median of 200 samples, one
   value per chunk) and variants. CPU time (time.process_time), best of --repeats runs.
2. Envelopes: step delay (time to 50 % of a step of EMG amplitude) and SNR of each envelope the
   node offers (the streaming core), side by side, on synthetic EMG (--envelopes-only).
3. Latency: a probe (in a fresh process) publishes /emg/raw chunks at 100 Hz and times their
   envelope on /emg/envelope (one clock: publish -> relay/node -> probe). The relay
   (benchmarks/relay_node.py) and the node run in their own processes, alternately, both
   started by node_runner.main_for as every node is, and are measured once they have answered
   a first chunk; "lost" counts chunks never answered after that; "callback p50" is the node's
   own timing of its callback (its diagnostics).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))
from ros_harness import benchmark_environment, print_load  # noqa: E402

benchmark_environment()

from biosig_ros.io.bio_file import load_bio  # noqa: E402
from biosig_ros.paths import resolve_data_path  # noqa: E402
from biosig_ros.signals import SignalChunk  # noqa: E402

RATE = 2000
CHUNK = 20


def test_signal(channels: int, seconds: float) -> np.ndarray:
    emg = load_bio(resolve_data_path("data/abd.bio"))["emg"]
    rows = np.resize(np.arange(emg.shape[0]), channels)
    samples = int(seconds * RATE)
    return np.ascontiguousarray(np.resize(emg[rows], (channels, samples)))


def cpu_times(cases: list, repeats: int) -> list[float]:
    """Best CPU seconds of each case (make, call, items) over the whole stream, a fresh
    processor per run; the cases take turns so that a busy spell of the machine is shared."""
    best = [float("inf")] * len(cases)
    for _ in range(repeats):
        for i, (make, call, items) in enumerate(cases):
            processor = make()
            start = time.process_time()
            for item in items:
                call(processor, item)
            best[i] = min(best[i], time.process_time() - start)
    return best


def cpu_benchmark(channels: int, seconds: float, repeats: int) -> None:
    # Imported here: biosiglive pulls in biorbd and matplotlib, which the latency probe (another
    # process) does without.
    from biosiglive import RealTimeProcessing

    from biosig_ros.processing.biosiglive_compat import BiosigliveRealTime, BiosigliveSettings
    from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings
    from biosig_ros.processing.emg_processor import EmgProcessingSettings, EmgProcessor

    x = test_signal(channels, seconds)
    chunks_cs = [np.ascontiguousarray(x[:, a:a + CHUNK]) for a in range(0, x.shape[1], CHUNK)]
    chunks_sc = [np.ascontiguousarray(c.T) for c in chunks_cs]  # samples x channels (topics)
    indexed = list(zip(range(0, x.shape[1], CHUNK), chunks_sc))
    print(f"CPU: {channels} channels, {RATE} Hz, {CHUNK}-sample chunks, {seconds:g} s of signal, "
          f"best of {repeats} runs")

    reference_outputs = []
    # Identity, call by call, on the whole returned arrays.
    reference, ours = RealTimeProcessing(RATE, RATE), BiosigliveRealTime(
        BiosigliveSettings(channel_count=channels))
    identical, largest = True, 0.0
    for c in chunks_cs:
        a, b = reference.process_emg(c), ours.process_emg(c)
        reference_outputs.append(a[:, -1])
        if a.shape != b.shape:
            identical, largest = False, float("inf")
        elif not np.array_equal(a, b):
            identical, largest = False, max(largest, float(np.abs(a - b).max()))

    same = dict(channel_count=channels, centring=True, centring_window=2000, bandpass_order=5,
                envelope="median", envelope_window=200)
    variants = [
        ("core, same settings, 1 value/chunk", EmgPipelineSettings(**same), CHUNK),
        ("core, no centring (node default), 1 value/chunk",
         EmgPipelineSettings(**{**same, "centring": False}), CHUNK),
        ("core, same settings, every sample (2 kHz)", EmgPipelineSettings(**same), 1),
        ("core, 5 Hz low-pass envelope, every sample",
         EmgPipelineSettings(**{**same, "envelope": "lowpass"}), 1),
        ("core, moving mean 200, every sample",
         EmgPipelineSettings(**{**same, "envelope": "mean"}), 1),
        ("core, median of 2000 samples, 1 value/chunk",
         EmgPipelineSettings(**{**same, "envelope_window": 2000}), CHUNK),
    ]
    names = [f"emg_{i}" for i in range(channels)]
    chunk_objects = [SignalChunk(c, a, a / RATE, float(RATE), names, "V") for a, c in indexed]
    cases = [
        ("biosiglive 2.0.3 process_emg (defaults)", (
            lambda: RealTimeProcessing(RATE, RATE), lambda p, c: p.process_emg(c), chunks_cs)),
        ("biosiglive-compatible mode (same calls)", (
            lambda: BiosigliveRealTime(BiosigliveSettings(channel_count=channels)),
            lambda p, c: p.process_emg(c), chunks_cs)),
    ]
    for label, settings, decimation in variants:
        cases.append((label, (lambda s=settings, d=decimation: EmgPipeline(s, d),
                              lambda p, item: p.process(item[1], item[0]), indexed)))
    cases.append(("node's chunk path (EmgProcessor: continuity, layout, core)", (
        lambda: EmgProcessor(EmgProcessingSettings()), lambda p, c: p.step(c), chunk_objects)))
    rows = list(zip([label for label, _ in cases], cpu_times([c for _, c in cases], repeats)))
    biosiglive = rows[0][1]
    print(f"  {'':62s} {'CPU ms per s':>12s} {'us per chunk':>13s} {'vs biosiglive':>14s}")
    for label, cpu in rows:
        print(f"  {label:62s} {1000 * cpu / seconds:12.2f} {1e6 * cpu / len(chunks_cs):13.1f} "
              f"{biosiglive / cpu:13.1f}x")
    print(f"  compatible mode output identical to biosiglive on all {len(chunks_cs)} calls "
          f"(whole returned arrays, bit for bit): {'yes' if identical else 'NO'}; "
          f"max |difference| = {largest:g}")

    # How far the streaming envelope is from biosiglive's, same chunks, after its first second.
    core = EmgPipeline(EmgPipelineSettings(**{**same, "centring": False}), CHUNK)
    streaming = np.array([core.process(c, a).values[0] for a, c in indexed])
    start = RATE // CHUNK
    relative = np.abs(streaming[start:] - np.array(reference_outputs)[start:]) / np.array(
        reference_outputs)[start:]
    print(f"  streaming core (node defaults) vs biosiglive envelope, after 1 s: median relative "
          f"difference {100 * np.median(relative):.3f} %, 99th percentile "
          f"{100 * np.percentile(relative, 99):.2f} %")


# --- envelopes: delay against smoothness ------------------------------------------------------

ENVELOPE_CASES = [
    ("moving median 100 ms (biosiglive default)", {"envelope": "median", "envelope_window": 200}),
    ("low-pass 2 Hz (order 2)", {"envelope": "lowpass", "lowpass_hz": 2.0, "lowpass_order": 2}),
    ("low-pass 4 Hz (order 2)", {"envelope": "lowpass", "lowpass_hz": 4.0, "lowpass_order": 2}),
    ("low-pass 6 Hz (order 2)", {"envelope": "lowpass", "lowpass_hz": 6.0, "lowpass_order": 2}),
    ("low-pass 6 Hz (order 4, node default order)", {"envelope": "lowpass", "lowpass_hz": 6.0}),
    ("low-pass 8 Hz (order 2)", {"envelope": "lowpass", "lowpass_hz": 8.0, "lowpass_order": 2}),
    ("RMS 100 ms", {"envelope": "rms", "envelope_window": 200}),
    ("RMS 50 ms", {"envelope": "rms", "envelope_window": 100}),
    ("moving mean 100 ms", {"envelope": "mean", "envelope_window": 200}),
]
MAX_DELAY_MS = 40.0  # the assistance controller's budget (issue #14)


def envelope_benchmark(channels: int = 8, steps: int = 20) -> list[tuple[str, float, float]]:
    """Prints each envelope's step delay and SNR (the node's streaming core, default band-pass);
    marks those within MAX_DELAY_MS with an SNR no worse than the median's."""
    from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings
    from biosig_ros.processing.emg_synthetic import envelope_figures, synthetic_step_emg

    x, onsets = synthetic_step_emg(channels, steps, RATE)
    rows = []
    for label, changes in ENVELOPE_CASES:
        core = EmgPipeline(EmgPipelineSettings(channel_count=channels, **changes))
        envelope = np.concatenate([core.process(x[a:a + CHUNK], a).values
                                   for a in range(0, len(x), CHUNK)])
        rows.append((label, *envelope_figures(envelope, onsets, RATE)))
    reference_snr = rows[0][2]
    print(f"\nEnvelopes: synthetic EMG ({channels} channels x {steps} steps of amplitude 0.05 -> "
          f"1, band 20-450 Hz, {RATE} Hz), band-pass 10-425 Hz order 5, rectified")
    print(f"  {'envelope':44s} {'delay ms':>9s} {'SNR dB':>7s}  qualifies (<= {MAX_DELAY_MS:g} ms, "
          "SNR >= median's)")
    for label, delay, snr in rows:
        ok = delay <= MAX_DELAY_MS and snr >= reference_snr
        print(f"  {label:44s} {delay:9.1f} {snr:7.1f}  {'yes' if ok else '-'}")
    return rows


# --- latency ---------------------------------------------------------------------------------


def latency_run(probe, publisher, received: dict, sent: dict, x: np.ndarray, seconds: float,
                start_chunk: int, until_echo: bool = False):
    """Publishes `seconds` of chunks at 100 Hz; returns the latencies after the first 50 and
    how many of those never came back. until_echo: publishes (up to 20 s) until a chunk comes
    back instead, and returns how many were sent."""
    from biosig_ros.ros.conversions import chunk_to_msg

    names = [f"emg_{i}" for i in range(x.shape[0])]
    count = int((20.0 if until_echo else seconds) * RATE / CHUNK)
    period = CHUNK / RATE
    keys = []
    next_time = time.perf_counter()
    for k in range(start_chunk, start_chunk + count):
        if until_echo and any(key in received for key in keys[-50:]):
            return len(keys)
        a = (k * CHUNK) % (x.shape[1] - CHUNK)
        msg = chunk_to_msg(SignalChunk(np.ascontiguousarray(x[:, a:a + CHUNK].T), k * CHUNK,
                                       time.time(), float(RATE), names, "V"))
        next_time += period
        delay = next_time - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[k * CHUNK] = time.perf_counter()
        publisher.publish(msg)
        keys.append(k * CHUNK)
    time.sleep(0.5)
    latencies = [received[key] - sent[key] for key in keys[50:] if key in received]
    return latencies, len(keys) - 50 - len(latencies)


def latency_benchmark(channels: int, seconds: float, rounds: int) -> None:
    from ros_harness import NodeProcess, RosProbe, process_cpu_seconds

    from diagnostic_msgs.msg import DiagnosticArray

    from biosig_ros.msg import SignalChunk as SignalChunkMsg
    from biosig_ros.ros.qos import sensor_qos

    x = test_signal(channels, 7.0)
    print(f"\nLatency: {channels} channels, {CHUNK}-sample chunks at {RATE // CHUNK} Hz, "
          f"{rounds} x {seconds:g} s per target, alternating; publish -> /emg/envelope")
    node = {"channel_count": channels}
    targets = {
        "relay": ([], "relay", None),
        "emg_processing, every sample": (["--node", "emg_processing"], "emg_processing", node),
        "emg_processing, 100 Hz": (["--node", "emg_processing"], "emg_processing",
                                   {**node, "publish_rate": 100.0}),
    }
    results = {label: [] for label in targets}
    lost = {label: 0 for label in targets}
    cpu = {label: [0.0, 0.0] for label in targets}
    callback = {label: [] for label in targets}
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    lock = threading.Lock()
    with RosProbe("latency_probe") as probe:
        def on_envelope(msg):
            now = time.perf_counter()
            with lock:
                # Decimated envelopes carry index // 20: map back to the chunk's first sample.
                index = msg.first_sample_index if msg.sample_rate == RATE else \
                    msg.first_sample_index * CHUNK
                received.setdefault(index, now)

        probe.node.create_subscription(SignalChunkMsg, "/emg/envelope", on_envelope,
                                       sensor_qos(1000))
        publisher = probe.publisher(SignalChunkMsg, "/emg/raw")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        chunk_counter = 0
        for _ in range(rounds):
            for label, (arguments, name, params) in targets.items():
                with NodeProcess("benchmarks.relay_node", name, params, arguments) as node:
                    if not (node.wait_for_output("ready", 30) and probe.wait_for_subscribers(
                            publisher) and probe.wait_until(
                            lambda: probe.node.count_publishers("/emg/envelope") >= 1)):
                        print(f"  {label}: did not start\n{node.output()}")
                        continue
                    # The graph may still list the previous round's node: measure only once
                    # this one answers.
                    echo = latency_run(probe, publisher, received, sent, x, 0.0, chunk_counter,
                                       until_echo=True)
                    chunk_counter += echo + 100
                    time.sleep(0.5)
                    before = process_cpu_seconds(node.process.pid)
                    latencies, missing = latency_run(probe, publisher, received, sent, x,
                                                     seconds, chunk_counter)
                    results[label] += latencies
                    lost[label] += missing
                    cpu[label][0] += process_cpu_seconds(node.process.pid) - before
                    cpu[label][1] += seconds
                    chunk_counter += int(seconds * RATE / CHUNK) + 100
                    time.sleep(1.1)  # the node's own callback timing, from its diagnostics
                    reports = [kv.value for _, array in list(diagnostics) for status in
                               array.status if status.name == name for kv in status.values
                               if kv.key == "processing_p50_us"]
                    if reports:
                        callback[label].append(float(reports[-1]))
                    diagnostics.clear()
    print(f"  {'':42s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} "
          f"{'CPU %':>6s} {'lost':>5s} {'callback p50 us':>16s}")
    for label, values in results.items():
        if not values:
            continue
        v = np.array(values) * 1e3
        share = 100 * cpu[label][0] / cpu[label][1] if cpu[label][1] else float("nan")
        inside = f"{np.median(callback[label]):16.0f}" if callback[label] else f"{'-':>16s}"
        print(f"  {label:42s} {np.percentile(v, 50):8.3f} {np.percentile(v, 90):8.3f} "
              f"{np.percentile(v, 99):8.3f} {v.max():8.3f} {share:6.1f} {lost[label]:5d} {inside}")
    relay = np.array(results["relay"]) * 1e3
    for label, values in results.items():
        if label.startswith("emg_processing") and len(values) and len(relay):
            v = np.array(values) * 1e3
            print(f"  added by {label:34s} over the relay: p50 "
                  f"{np.percentile(v, 50) - np.percentile(relay, 50):+.3f} ms, p90 "
                  f"{np.percentile(v, 90) - np.percentile(relay, 90):+.3f} ms "
                  "(target: at most 0.3 ms at p50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="signal for the CPU part")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--envelopes-only", action="store_true",
                        help="only the envelope delay/SNR table")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.quiet:
        print_load()
    if args.envelopes_only:
        envelope_benchmark()
        return
    if not args.skip_cpu:
        cpu_benchmark(args.channels, args.seconds, args.repeats)
        envelope_benchmark()
    if not args.skip_latency:
        if args.skip_cpu:
            latency_benchmark(args.channels, args.latency_seconds, args.rounds)
        else:  # in a fresh process: the CPU part's imports would weigh on the probe
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, "--skip-cpu", "--channels",
                            str(args.channels), "--latency-seconds", str(args.latency_seconds),
                            "--rounds", str(args.rounds), "--quiet"], check=False)


if __name__ == "__main__":
    main()
