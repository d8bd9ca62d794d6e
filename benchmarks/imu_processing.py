"""IMU processing: CPU per second of signal, biosiglive 2.0.3's process_imu against the
compatible mode (same calls, identical output checked) and the streaming mode, in one run.
Prints figures; passes or fails nothing.

    tools/run bench imu_processing [--imus 16] [--seconds 60] [--repeats 3]

16 Trigno sensors' accelerometers (x, y, z) at the aux rate (148.148 Hz) in 2-sample chunks
(one aux frame), biosiglive's default window (one second), accel + squared (the norm minus g).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biosig_ros.processing.imu_processing import (  # noqa: E402
    BiosigliveImu, ImuProcessingSettings, StreamingImu)

RATE = 148.148
CHUNK = 2


def best_cpu(make, call, items, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        processor = make()
        start = time.process_time()
        for item in items:
            call(processor, item)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    from biosiglive import RealTimeProcessing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imus", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} (other processes share these CPUs)")
    n = int(args.seconds * RATE) // CHUNK * CHUNK
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (args.imus, 3, n))
    x[:, 2] += 9.81
    chunks = [np.ascontiguousarray(x[:, :, a:a + CHUNK]) for a in range(0, n, CHUNK)]
    flat = [np.ascontiguousarray(c.reshape(-1, CHUNK).T) for c in chunks]  # samples x axes
    window = int(round(RATE))
    options = dict(accel=True, squared=True)
    compat = ImuProcessingSettings(mode="biosiglive", sensor="acc", squared=True,
                                   processing_window=window)

    reference, ours = RealTimeProcessing(RATE, window), BiosigliveImu(RATE, args.imus, compat)
    identical = all(np.array_equal(reference.process_imu(c.copy(), **options),
                                    ours.process_imu(c)) for c in chunks)
    cases = [
        ("biosiglive 2.0.3 process_imu (accel, squared, 1 s window)",
         lambda: RealTimeProcessing(RATE, window),
         lambda p, c: p.process_imu(c, **options), chunks),
        ("biosiglive-compatible mode (same calls)",
         lambda: BiosigliveImu(RATE, args.imus, compat), lambda p, c: p.process_imu(c), chunks),
        ("streaming: 1 s moving mean + norm, every sample",
         lambda: StreamingImu(RATE, args.imus, ImuProcessingSettings(squared=True)),
         lambda p, c: p.process(c), flat),
        ("streaming: 5 Hz low-pass (order 2) + norm, every sample",
         lambda: StreamingImu(RATE, args.imus, ImuProcessingSettings(
             squared=True, window_s=0.0, lowpass_hz=5.0)), lambda p, c: p.process(c), flat),
    ]
    print(f"CPU: {args.imus} IMUs x 3 axes at {RATE} Hz, {CHUNK}-sample chunks, "
          f"{args.seconds:g} s of signal, best of {args.repeats} runs")
    rows = [(label, best_cpu(make, call, items, args.repeats))
            for label, make, call, items in cases]
    print(f"  {'':58s} {'CPU ms per s':>12s} {'us per chunk':>13s} {'vs biosiglive':>14s}")
    for label, cpu in rows:
        print(f"  {label:58s} {1000 * cpu / args.seconds:12.2f} "
              f"{1e6 * cpu / len(chunks):13.1f} {rows[0][1] / cpu:13.1f}x")
    print(f"  compatible mode identical to biosiglive on all {len(chunks)} calls (whole returned "
          f"arrays, bit for bit): {'yes' if identical else 'NO'}")


if __name__ == "__main__":
    main()
