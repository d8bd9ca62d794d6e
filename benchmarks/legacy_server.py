"""Legacy TCP server under load: N biosiglive clients polling at 100 Hz, side by side.

Servers, fed the same data (the example recording data/abd.bio: 10 EMG channels at 2000 Hz,
16 markers at 100 Hz, plus a processed-EMG window and 15 joint angles):
- biosig_ros: bridge_node in its own process (recording on, as in config/bridge.yaml), fed by a
  publisher process at 100 Hz: /emg/raw and /emg/envelope (20-sample chunks), /markers,
  /ik/joint_states;
- biosiglive: biosiglive.streaming.server.Server run by StreamData.open_server's loop, fed by a
  process doing what StreamData.save_streamed_data does every 10 ms (rounded data_dic into a
  multiprocessing Manager queue, replacing the previous one).
Clients: N processes, each a biosiglive.Client polling at --rate Hz with
Message(command=[the four keys], nb_frame_to_get=--frames), each at a random phase of the
polling period (independent programs, not a synchronized burst). Latency = get_data() wall time
(connect, request, reply, unpickle). Errors = exceptions (5 s socket timeout) + error replies.
Server CPU = CPU time of the server process (the whole bridge node: topics, recording and
server; biosiglive: its server process) over the measurement, in % of one core.

Idle flood (--idle-flood N): one client against the bridge, alone and then while N idle TCP
connections are held open (each one the server closes, evicted, is reopened at once), printing
the good client's p50/p99 both ways.

    tools/run bench legacy_server [--clients 1,5,10,20] [--duration 5] [--rate 100] [--frames 1]
                                  [--idle-flood 500]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from ros_harness import benchmark_environment  # noqa: E402

benchmark_environment()

KEYS = ["proc_device_data", "raw_device_data", "kinematics_data", "marker_set_data"]
CHUNK = 20          # EMG samples per 10 ms loop at 2000 Hz
LOOP_RATE = 100.0
NQ = 15


def source_data():
    """EMG (10 x n, V), a crude envelope of it, markers (3 x 16 x frames, mm), q (15 x frames)."""
    from biosig_ros.io.bio_file import load_bio
    from biosig_ros.paths import resolve_data_path

    data = load_bio(resolve_data_path("data/abd.bio"))
    emg, markers = data["emg"], data["markers"]
    kernel = np.ones(200) / 200
    envelope = np.array([np.convolve(np.abs(c), kernel, mode="same") for c in emg])
    frames = markers.shape[-1]
    q = np.sin(np.linspace(0, 6, frames))[None, :] * np.linspace(0.1, 1.5, NQ)[:, None]
    return emg, envelope, markers, q


# --- feeders --------------------------------------------------------------------------------
def ros_feeder(stop, ready):
    """Publishes the recording in a loop at 100 Hz, like the replay + processing + IK chain."""
    import rclpy
    from sensor_msgs.msg import JointState

    from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
    from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg, seconds_to_time
    from biosig_ros.ros.qos import sensor_qos
    from biosig_ros.signals import MarkerFrame, SignalChunk

    emg, envelope, markers, q = source_data()
    rclpy.init()
    node = rclpy.create_node("legacy_bench_feeder")
    raw_pub = node.create_publisher(SignalChunkMsg, "/emg/raw", sensor_qos())
    env_pub = node.create_publisher(SignalChunkMsg, "/emg/envelope", sensor_qos())
    marker_pub = node.create_publisher(MarkerSet, "/markers", sensor_qos())
    joint_pub = node.create_publisher(JointState, "/ik/joint_states", sensor_qos())
    channels = [f"EMG{i + 1}" for i in range(emg.shape[0])]
    marker_names = [f"M{i}" for i in range(markers.shape[1])]
    joints = [f"q{i}" for i in range(NQ)]
    ready.set()
    loop, start = 0, time.monotonic()
    while not stop.is_set():
        frame = loop % markers.shape[-1]
        first = frame * CHUNK
        stamp = time.time()
        raw_pub.publish(chunk_to_msg(SignalChunk(emg[:, first:first + CHUNK].T, loop * CHUNK, stamp,
                                                 2000.0, channels, "V")))
        env_pub.publish(chunk_to_msg(SignalChunk(envelope[:, first:first + CHUNK].T, loop * CHUNK,
                                                 stamp, 2000.0, channels, "V")))
        marker_pub.publish(frame_to_msg(MarkerFrame(markers[:, :, frame].T / 1000.0, marker_names,
                                                    loop, stamp, 100.0, "abd")))
        state = JointState(name=joints, position=q[:, frame].tolist())
        state.header.stamp = seconds_to_time(stamp)
        joint_pub.publish(state)
        loop += 1
        time.sleep(max(0.0, start + loop / LOOP_RATE - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown()


def streamdata_feeder(queue, stop, ready):
    """StreamData.save_streamed_data's server part: every loop, round the data like StreamData
    and replace the queued data_dic."""
    emg, envelope, markers, q = source_data()
    ready.set()
    loop, start = 0, time.monotonic()
    while not stop.is_set():
        frame = loop % markers.shape[-1]
        end = (frame + 1) * CHUNK
        window = envelope[:, max(0, end - 2000):end]
        data_dic = {
            "proc_device_data": [np.around(window, decimals=8)],
            "raw_device_data": [np.around(emg[:, end - CHUNK:end], decimals=8)],
            "kinematics_data": [np.around(q[:, max(0, frame - 99):frame + 1], decimals=6)],
            "marker_set_data": [np.around(markers[:, :, frame:frame + 1], decimals=6)],
        }
        try:
            queue.get_nowait()
        except Exception:  # noqa: BLE001 - StreamData's own pattern: the queue may be empty
            pass
        queue.put_nowait(data_dic)
        loop += 1
        time.sleep(max(0.0, start + loop / LOOP_RATE - time.monotonic()))


def streamdata_server(queue, port):
    """StreamData.open_server, verbatim in behaviour: accept, read, wait for data, reply."""
    from biosiglive.streaming.server import Server

    server = Server("127.0.0.1", port, server_type="TCP")
    server.start()
    while True:
        connection, message = server.client_listening()
        data_queue = []
        while len(data_queue) == 0:
            try:
                data_queue = queue.get_nowait()
                is_working = True
            except Exception:  # noqa: BLE001 - as in StreamData
                is_working = False
            if is_working:
                server.send_data(data_queue, connection, message)


# --- clients --------------------------------------------------------------------------------
def client_worker(tasks, results):
    """A persistent client process: runs the polling loops it is given."""
    import socket

    socket.setdefaulttimeout(5.0)
    from biosiglive import Client, Message

    results.put(("ready", None))
    while True:
        task = tasks.get()
        if task is None:
            return
        port, start_at, duration, rate, frames = task
        message = Message(command=list(KEYS), nb_frame_to_get=frames)
        latencies, errors, kinds = [], 0, {}
        # Independent clients: each starts at its own phase within the polling period.
        start_at += random.uniform(0.0, 1.0 / rate)
        while time.time() < start_at:
            time.sleep(0.001)
        tick = time.monotonic()
        end = tick + duration
        n = 0
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                reply = Client("127.0.0.1", port, client_type="TCP").get_data(message)
                if not isinstance(reply, dict) or "error" in reply or set(reply) != set(KEYS):
                    raise ValueError(f"bad reply: {str(reply)[:80]}")
                latencies.append((time.perf_counter() - t0) * 1e3)
            except Exception as error:  # noqa: BLE001 - counted, the loop goes on
                errors += 1
                kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
            n += 1
            time.sleep(max(0.0, tick + n / rate - time.monotonic()))
        results.put(("done", (latencies, errors, kinds)))


def run_clients(workers, port, count, duration, rate, frames):
    tasks, results = workers
    start_at = time.time() + 0.5
    for i in range(count):
        tasks[i].put((port, start_at, duration, rate, frames))
    latencies, errors, kinds = [], 0, {}
    for _ in range(count):
        _, (lat, err, kind) = results.get(timeout=duration + 60)
        latencies += lat
        errors += err
        for k, v in kind.items():
            kinds[k] = kinds.get(k, 0) + v
    return latencies, errors, kinds


def wait_until_serving(port, timeout=30.0):
    import socket

    from biosiglive import Client, Message

    deadline = time.monotonic() + timeout
    socket.setdefaulttimeout(2.0)
    while time.monotonic() < deadline:
        try:
            reply = Client("127.0.0.1", port, client_type="TCP").get_data(
                Message(command=list(KEYS), nb_frame_to_get=1))
            if "error" not in reply:
                return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    return False


class IdleFlood:
    """Holds `count` idle connections to port open, reopening each one the server closes."""

    def __init__(self, port: int, count: int):
        import threading

        self.port, self.count = port, count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import select
        import socket

        held = []
        try:
            while not self._stop.is_set():
                while len(held) < self.count:
                    try:
                        held.append(socket.create_connection(("127.0.0.1", self.port), timeout=2))
                    except OSError:
                        break
                closed, _, _ = select.select(held, [], [], 0.05)
                for sock in closed:  # readable = evicted (error reply or EOF): reopen
                    sock.close()
                    held.remove(sock)
                    self.reopened += 1
        finally:
            for sock in held:
                sock.close()


def flood_rows(workers, port, flood, duration, rate, frames) -> None:
    for label, count in (("alone", 0), (f"{flood} idle", flood)):
        if count:
            with IdleFlood(port, count) as held:
                time.sleep(1.0)
                latencies, errors, kinds = run_clients(workers, port, 1, duration, rate, frames)
            label += f" ({held.reopened} evicted)"
        else:
            latencies, errors, kinds = run_clients(workers, port, 1, duration, rate, frames)
        a = np.asarray(latencies) if latencies else np.asarray([np.nan])
        print(f"idle flood: good client {label:<24} replies {len(latencies):>5}  p50 "
              f"{np.percentile(a, 50):6.2f} ms  p99 {np.percentile(a, 99):6.2f} ms  "
              f"errors {errors} {kinds or ''}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]



def row(server, count, latencies, errors, kinds, duration, cpu):
    a = np.asarray(latencies) if latencies else np.asarray([np.nan])
    kind = ", ".join(f"{k} {v}" for k, v in kinds.items())
    print(f"{count:>7} {server:<11} {len(latencies):>8} {len(latencies) / duration:>8.0f} "
          f"{np.percentile(a, 50):>7.2f} {np.percentile(a, 99):>7.2f} {np.max(a):>8.1f} "
          f"{errors:>7} {cpu:>6.0f}%{'  (' + kind + ')' if kind else ''}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,5,10,20")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s per client")
    parser.add_argument("--frames", type=int, default=1, help="nb_frame_to_get (0: whole buffers)")
    parser.add_argument("--idle-flood", type=int, default=0,
                        help="also measure one client with this many idle connections held open")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    ctx = mp.get_context("spawn")
    stop = ctx.Event()

    from ros_harness import NodeProcess, process_cpu_seconds

    print(f"{os.cpu_count()} CPUs; {args.rate:g} Hz per client, nb_frame_to_get={args.frames}, "
          f"{args.duration:g} s per measurement", flush=True)
    tasks = [ctx.Queue() for _ in range(max(counts))]
    results = ctx.Queue()
    workers = [ctx.Process(target=client_worker, args=(tasks[i], results), daemon=True)
               for i in range(max(counts))]
    for worker in workers:
        worker.start()
    for _ in workers:
        results.get(timeout=120)

    # biosig_ros: the bridge node, recording like the demo config, and its publisher.
    recordings = tempfile.mkdtemp(prefix="legacy_bench_")
    bridge = NodeProcess("biosig_ros.nodes.bridge_node", "bridge", {
        "port": 0, "record_on_start": True, "record_directory": recordings,
        "save_frequency": 10.0})
    ready = ctx.Event()
    feeder = ctx.Process(target=ros_feeder, args=(stop, ready), daemon=True)
    feeder.start()
    # biosiglive: StreamData's server process and its feeder.
    manager = ctx.Manager()
    queue = manager.Queue()
    ref_port = free_port()
    ref_ready = ctx.Event()
    ref_feeder = ctx.Process(target=streamdata_feeder, args=(queue, stop, ref_ready), daemon=True)
    ref_feeder.start()
    reference = ctx.Process(target=streamdata_server, args=(queue, ref_port), daemon=True)
    reference.start()
    try:
        if not bridge.wait_for_output("serving biosiglive clients on", 30):
            raise SystemExit("bridge did not start:\n" + bridge.output())
        port = int(re.search(r"serving biosiglive clients on [\d.]+:(\d+)", bridge.output()).group(1))
        ready.wait(60)
        ref_ready.wait(60)
        if not wait_until_serving(port):
            raise SystemExit("bridge never served data:\n" + bridge.output())
        if not wait_until_serving(ref_port):
            raise SystemExit("biosiglive server never served data")
        print(f"{'clients':>7} {'server':<11} {'replies':>8} {'per s':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'max ms':>8} {'errors':>7} {'server CPU':>7}", flush=True)
        for count in counts:
            for name, server_port, pid in (("biosig_ros", port, bridge.process.pid),
                                           ("biosiglive", ref_port, reference.pid)):
                if name == "biosiglive" and not reference.is_alive():
                    print(f"{count:>7} {name:<11} server process died (exit {reference.exitcode})")
                    continue
                cpu0, t0 = process_cpu_seconds(pid), time.monotonic()
                latencies, errors, kinds = run_clients(
                    (tasks, results), server_port, count, args.duration, args.rate, args.frames)
                cpu = (process_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
                row(name, count, latencies, errors, kinds, args.duration, cpu)
        if args.idle_flood:
            flood_rows((tasks, results), port, args.idle_flood, args.duration, args.rate,
                       args.frames)
        print(f"bridge alive: {bridge.alive()}; biosiglive server alive: {reference.is_alive()}")
    finally:
        stop.set()
        for task in tasks:
            task.put(None)
        bridge.stop()
        for process in (feeder, ref_feeder, reference, *workers):
            process.join(timeout=3)
            if process.is_alive():
                process.terminate()
        manager.shutdown()


if __name__ == "__main__":
    main()
