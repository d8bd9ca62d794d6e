"""Helpers for multi-process tests: node processes and an in-test ROS probe.

NodeProcess runs one node (or any module) in its own process with parameters from a dict.
RosProbe is a separate rclpy context in the test process: subscribe, publish, call services,
and wait for conditions. Everything stays on loopback in the domain chosen by conftest.py.
"""
from __future__ import annotations

import fcntl
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor

from biosig_ros.discovery import restrict_discovery_to_localhost
from biosig_ros.ros.qos import sensor_qos

REPO = Path(__file__).resolve().parent.parent
_DOMAIN_LOCKS: list = []
# The default wait for liveness (a node up, a subscriber matched, a message in, a service
# answer): a bound for a failure, never a figure. Generous: in a parallel run, a node started
# beside a graph on a 2-CPU machine shared with other work took more than 20 s to start.
LIVENESS_TIMEOUT = 60.0


def isolate_ros_graph(environment=os.environ) -> int:
    """Give this process (and the processes it starts) a ROS domain that no other test run or
    benchmark on this machine holds, with discovery limited to this machine.

    Domains 1-100 are claimed with a lock file held until the process exits; since discovery
    is localhost-only, a domain unique on this machine is unique for DDS."""
    restrict_discovery_to_localhost(environment, force=True)
    candidates = list(range(1, 101))
    random.SystemRandom().shuffle(candidates)
    for domain in candidates:
        lock = open(f"/tmp/biosig_ros-ros-domain-{domain}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _DOMAIN_LOCKS.append(lock)
        environment["ROS_DOMAIN_ID"] = str(domain)
        return domain
    raise RuntimeError("every ROS domain 1-100 is held by another test run on this machine")


def benchmark_environment(environment=os.environ) -> None:
    """The ROS set-up of the latency benchmarks (docs/benchmarks.md): a random domain of
    101-200 (tests claim 1-100) unless given, and rmw's LOCALHOST discovery (Fast DDS with its
    shared-memory transport), the conditions of every figure recorded so far. Graphs started
    by the runner use the package's UDP-loopback profile instead (isolate_ros_graph)."""
    environment.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    environment.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for benchmarks."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's pick), for a server started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def print_load(at_end: bool = False) -> None:
    """The line a benchmark prints before its figures (CPUs and load average) or after them
    (the load at the end): the machine is shared, and its figures are read with its load."""
    one, five, fifteen = os.getloadavg()
    if at_end:
        print(f"\nload average at the end: {one:.2f} {five:.2f} {fifteen:.2f}")
    else:
        print(f"machine: {os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} "
              f"{fifteen:.2f} (other processes share these CPUs)")


def shipped_parameters(config_file: str, **overrides) -> dict:
    """The parameters of a file in config/ (keyed `/**`, for any node name), with overrides."""
    params = yaml.safe_load((REPO / "config" / config_file).read_text(encoding="utf-8"))
    return {**params["/**"]["ros__parameters"], **overrides}


def wait_until(condition, timeout: float = LIVENESS_TIMEOUT, interval: float = 0.02) -> bool:
    """Poll condition() until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def stopped_after(nodes: dict):
    """A fixture's body for nodes started together (each refusing its configuration, say):
    yields them, then stops every one."""
    try:
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


class NodeProcess:
    """A node running in its own process. params: dict written to a ROS params file, keyed by
    the node's full name (namespace: "/x" puts the node and its relative topics under /x; a
    file keyed by the bare name would not reach /x/name); env: variables set for it only."""

    def __init__(self, module: str, name: str, params: dict | None = None,
                 args: list[str] | None = None, ros: bool = True, namespace: str = "",
                 env: dict | None = None):
        self.name = name
        self._log = tempfile.NamedTemporaryFile(
            mode="w+", prefix=f"{name}-", suffix=".log", delete=False)
        command = [sys.executable, "-u", "-m", module, *(args or [])]
        if ros:
            command += ["--ros-args", "-r", f"__node:={name}"]
            if namespace:
                command += ["-r", f"__ns:={namespace}"]
            if params:
                params_file = tempfile.NamedTemporaryFile(
                    mode="w", prefix=f"{name}-", suffix=".yaml", delete=False)
                key = f"{namespace.rstrip('/')}/{name}" if namespace else name
                yaml.safe_dump({key: {"ros__parameters": params}}, params_file)
                params_file.close()
                command += ["--params-file", params_file.name]
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, **(env or {})})

    def output(self) -> str:
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, text: str, timeout: float = LIVENESS_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.process.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig=signal.SIGINT, timeout: float = 10.0) -> int:
        """Signal the process and wait; kill it if it does not stop. Returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class RosProbe:
    """An rclpy node with its own context, spun in a background thread."""

    def __init__(self, name: str = "test_probe"):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the spin thread
            pass

    def subscribe(self, msg_type, topic: str, qos=None) -> list:
        """Collect every message on topic into the returned list (sensor QoS by default)."""
        received: list = []

        def on_message(msg):
            with self._lock:
                received.append((time.time(), msg))

        self.node.create_subscription(msg_type, topic, on_message, qos or sensor_qos(1000))
        return received

    def publisher(self, msg_type, topic: str, qos=None):
        return self.node.create_publisher(msg_type, topic, qos or sensor_qos())

    def call(self, srv_type, name: str, request, timeout: float = LIVENESS_TIMEOUT):
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {name} did not answer")
            time.sleep(0.01)
        return future.result()

    def wait_until(self, condition, timeout: float = LIVENESS_TIMEOUT,
                   interval: float = 0.02) -> bool:
        return wait_until(condition, timeout, interval)

    def wait_for_subscribers(self, publisher, count: int = 1,
                             timeout: float = LIVENESS_TIMEOUT) -> bool:
        return self.wait_until(lambda: publisher.get_subscription_count() >= count, timeout)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
