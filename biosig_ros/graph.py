"""Start a node graph without ROS 2 launch: one process per node, same config, clean stop.

    python -m biosig_ros.graph demo [--duration SECONDS] [--set NODE.PARAM=VALUE ...]
    python -m biosig_ros.graph demo --recording TRIAL.c3d --model SUBJECT.bioMod

Output lines are prefixed with the process name. Ctrl-C (or --duration) sends SIGTERM to every
process and waits for them (a running node closes cleanly on it, as on SIGINT; one still
importing its modules just ends, without a KeyboardInterrupt traceback). A process that exits
on its own stops the whole graph, and the runner exits with that process's status so that a
configuration error is not hidden.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from biosig_ros.graph_spec import EXECUTABLES, GRAPHS, NodeSpec
from biosig_ros.paths import config_dir, share_dir

STOP_TIMEOUT_S = 10.0
# Graphs that need no other machine stay on this host unless told otherwise (--network);
# the lab graph serves robots elsewhere on the network.
LOCAL_GRAPHS = {"demo", "simulated_devices"}


def command_for(spec: NodeSpec, overrides: dict[str, list[str]]) -> list[str]:
    """The command line that runs one NodeSpec with this interpreter."""
    command = [sys.executable, "-u", "-m", EXECUTABLES[spec.executable]]
    command += [arg.replace("{share}", str(share_dir())) for arg in spec.arguments]
    if spec.is_ros_node:
        command += ["--ros-args", "-r", f"__node:={spec.name}"]
        for params_file in spec.params:
            command += ["--params-file", str(config_dir() / params_file)]
        for assignment in overrides.get(spec.name, []):
            command += ["-p", assignment]
    return command


def _forward_output(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


class Graph:
    """The running processes of one graph."""

    def __init__(self, specs: tuple[NodeSpec, ...], overrides: dict[str, list[str]]):
        self.processes: dict[str, subprocess.Popen] = {}
        for spec in specs:
            process = subprocess.Popen(
                command_for(spec, overrides), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, bufsize=1, start_new_session=True)
            self.processes[spec.name] = process
            threading.Thread(target=_forward_output, args=(spec.name, process.stdout),
                             daemon=True).start()

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"[graph] {name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it",
                      flush=True)
                process.kill()
                process.wait()


def restrict_discovery_to_localhost(environment) -> None:
    """Localhost-only discovery, unless the environment already chose: Jazzy and later read
    ROS_AUTOMATIC_DISCOVERY_RANGE, Humble reads ROS_LOCALHOST_ONLY."""
    if "ROS_AUTOMATIC_DISCOVERY_RANGE" in environment or "ROS_LOCALHOST_ONLY" in environment:
        return
    if environment.get("ROS_DISTRO") == "humble":
        environment["ROS_LOCALHOST_ONLY"] = "1"
    else:
        environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def parse_overrides(assignments: list[str]) -> dict[str, list[str]]:
    overrides: dict[str, list[str]] = {}
    for assignment in assignments:
        node, _, rest = assignment.partition(".")
        if not rest or "=" not in rest:
            raise SystemExit(f"--set expects NODE.PARAM=VALUE, got {assignment!r}")
        param, _, value = rest.partition("=")
        overrides.setdefault(node, []).append(f"{param}:={value}")
    return overrides


def _caller_path(path: str) -> str:
    """path as the user meant it: relative to where tools/run was called from."""
    base = os.environ.get("BIOSIG_ROS_CALLER_DIR", os.getcwd())
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def user_files(specs: tuple[NodeSpec, ...], overrides: dict[str, list[str]],
               recording: str | None, model: str | None) -> tuple[NodeSpec, ...]:
    """--recording / --model as parameter overrides: the replay plays the user's file with
    config/replay.yaml (names from the file, not the demo's abd.bio names), IK, the
    replay's marker report and the live view's skeleton use the model. Returns the graph's specs, adjusted."""
    names = {spec.name for spec in specs}
    if recording is not None:
        if "replay" not in names:
            raise SystemExit("--recording applies to graphs with a replay node (demo)")
        specs = tuple(dataclasses.replace(spec, params=("replay.yaml",))
                      if spec.name == "replay" else spec for spec in specs)
        overrides.setdefault("replay", []).append(f"file:={_caller_path(recording)}")
    if model is not None:
        for node in ("replay", "ik", "live_view"):  # live_view: the skeleton of that model
            if node in names:
                overrides.setdefault(node, []).append(f"model_path:={_caller_path(model)}")
    return specs


def emg_layout_overrides(overrides: dict[str, list[str]]) -> list[str]:
    """emg_processing's channel_count and sample_rate for the EMG the replay will play.

    Interim, until emg_processing takes its layout from the stream (issue #12, item 3): it
    refuses chunks of another channel count than configured. Reads the recording as the
    replay will (config/replay.yaml + the replay's overrides); on any problem nothing is
    overridden and the replay node itself reports it."""
    from biosig_ros.io.recording import RecordingSettings, read_recording
    from biosig_ros.errors import ConfigError
    import yaml

    document = yaml.safe_load((config_dir() / "replay.yaml").read_text())
    values = dict(next(iter(document.values()))["ros__parameters"])
    for assignment in overrides.get("replay", []):
        name, _, value = assignment.partition(":=")
        values[name] = yaml.safe_load(value)
    known = {f.name for f in dataclasses.fields(RecordingSettings)}
    try:
        recording = read_recording(
            RecordingSettings(**{k: v for k, v in values.items() if k in known}))
    except (ConfigError, TypeError, ValueError, OSError):
        return []
    if recording.signal is None:
        return []
    signal = recording.signal
    return [f"channel_count:={len(signal.channel_names)}",
            f"sample_rate:={float(signal.sample_rate)}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("graph", choices=sorted(GRAPHS))
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a node parameter, e.g. --set replay.loop=false")
    parser.add_argument("--recording", metavar="FILE",
                        help="replay this .bio, .c3d or .mcap file instead of data/abd.bio")
    parser.add_argument("--model", metavar="FILE",
                        help="biorbd .bioMod model for IK (and the replay's marker report)")
    parser.add_argument("--network", action="store_true",
                        help="let demo/simulated graphs be discovered from other machines")
    args = parser.parse_args(argv)
    if args.graph in LOCAL_GRAPHS and not args.network:
        restrict_discovery_to_localhost(os.environ)

    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())

    overrides = parse_overrides(args.set)
    specs = user_files(GRAPHS[args.graph], overrides, args.recording, args.model)
    if args.recording is not None and any(s.name == "emg_processing" for s in specs):
        # User overrides come last and win.
        overrides["emg_processing"] = (emg_layout_overrides(overrides)
                                       + overrides.get("emg_processing", []))
    graph = Graph(specs, overrides)
    started = time.monotonic()
    status = 0
    while not interrupted.wait(0.2):
        exited = graph.first_exited()
        if exited is not None:
            name, status = exited
            print(f"[graph] {name} exited with status {status}; stopping the graph", flush=True)
            break
        if args.duration is not None and time.monotonic() - started >= args.duration:
            break
    graph.stop()
    print("[graph] stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
