"""Start a node graph without ROS 2 launch: one process per node, same config, supervised.

    python -m biosig_ros.graph demo [--namespace NS] [--port 50001 ...] [--arg NAME:=VALUE ...]
                                    [--set NODE.PARAM=VALUE ...] [--duration SECONDS]
    python -m biosig_ros.graph demo --recording TRIAL.c3d --model SUBJECT.bioMod

The options mirror the launch files' arguments (biosig_ros/graph_spec.py); output lines are
prefixed with the process name. A process that dies is started again after a delay (doubling
while it keeps dying quickly, as launch's respawn), the others keep running. The graph stops on
Ctrl-C / SIGTERM, after --duration, or when a process exits with status 2 (a configuration
error, which a restart would repeat): the runner then exits with that status.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from biosig_ros.graph_spec import (CONFIG_ERROR_STATUS, EXECUTABLES, GRAPHS, RESPAWN_DELAY_S,
                                   NodeSpec, graph_arguments, node_overrides, started)
from biosig_ros.discovery import choose_transport
from biosig_ros.paths import config_dir, resolve_data_path, share_dir

STOP_TIMEOUT_S = 10.0
MAX_RESPAWN_DELAY_S = 30.0
STABLE_RUN_S = 30.0  # a process that ran this long restarts after the first delay again
# Graphs that need no other machine stay on this host unless told otherwise (--network);
# the lab graph serves robots elsewhere on the network.
LOCAL_GRAPHS = {"demo", "simulated_devices"}


def command_for(spec: NodeSpec, overrides: dict[str, list[str]], namespace: str = "",
                arguments: dict[str, dict] | None = None, params_files: dict | None = None,
                scratch: Path | None = None) -> list[str]:
    """The command line that runs one NodeSpec with this interpreter.

    overrides: `--set` assignments per node (NAME:=VALUE); arguments: the graph arguments'
    values per node (parameters, or --options of a non-ROS process), applied after the
    parameter files through a file written in scratch; params_files: replacement of a node's
    first parameter file."""
    values = (arguments or {}).get(spec.name, {})
    command = [sys.executable, "-u", "-m", EXECUTABLES[spec.executable]]
    command += [arg.replace("{share}", str(share_dir())) for arg in spec.arguments]
    if not spec.is_ros_node:
        for option, value in values.items():
            command += [option, str(value)]
        return command
    command += ["--ros-args", "-r", f"__node:={spec.name}"]
    if namespace:
        command += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for option, value in ros_arguments(values).items():  # e.g. --log-level debug
        command += [option, str(value)]
    values = {key: value for key, value in values.items() if not key.startswith("--")}
    files = [str(config_dir() / name) for name in spec.params]
    if params_files and spec.name in params_files:
        files[:1] = [params_files[spec.name]]
    if values:
        path = (scratch or Path(tempfile.mkdtemp())) / f"{spec.name}.arguments.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}), encoding="utf-8")
        files.append(str(path))
    for params_file in files:
        command += ["--params-file", params_file]
    for assignment in overrides.get(spec.name, []):
        command += ["-p", assignment]
    return command


def ros_arguments(values: dict) -> dict:
    """The ROS arguments among a ROS node's argument values (keys starting with "--")."""
    return {key: value for key, value in values.items() if key.startswith("--")}


def _forward_output(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


class Supervised:
    """One process of the graph, started again (after a back-off) when it dies."""

    def __init__(self, name: str, command: list[str]):
        self.name, self.command = name, command
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.delay = RESPAWN_DELAY_S
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8",
            errors="replace",
            bufsize=1, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None
        threading.Thread(target=_forward_output, args=(self.name, self.process.stdout),
                         daemon=True).start()

    def poll(self) -> int | None:
        """Start it again when due; returns the exit status when it just ended."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                print(f"[graph] restarting {self.name} (restart {self.restarts})", flush=True)
                self.start()
            return None
        status = self.process.poll()
        if status is None:
            return None
        if now - self.started_at >= STABLE_RUN_S:
            self.delay = RESPAWN_DELAY_S
        self.restart_at = now + self.delay
        return status

    def schedule_note(self) -> str:
        note = f"restarting in {self.delay:g} s"
        self.delay = min(MAX_RESPAWN_DELAY_S, self.delay * 2)
        return note

    def stop_signal(self) -> None:
        self.restart_at = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[graph] {self.name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it",
                  flush=True)
            self.process.kill()
            self.process.wait()


class Graph:
    """The supervised processes of one graph."""

    def __init__(self, commands: dict[str, list[str]]):
        self.members = {name: Supervised(name, command) for name, command in commands.items()}
        for member in self.members.values():
            member.start()

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        return {name: member.process for name, member in self.members.items()}

    def supervise(self) -> int | None:
        """One look at every process: restarts the dead; returns a status that ends the
        graph (a configuration error), else None."""
        for name, member in self.members.items():
            status = member.poll()
            if status is None:
                continue
            if status == CONFIG_ERROR_STATUS:
                print(f"[graph] {name} exited with status {status}; stopping the graph",
                      flush=True)
                return status
            print(f"[graph] {name} exited with status {status}; {member.schedule_note()}",
                  flush=True)
        return None

    def stop(self) -> None:
        for member in self.members.values():
            member.stop_signal()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for member in self.members.values():
            member.wait(deadline)


def parse_overrides(assignments: list[str]) -> dict[str, list[str]]:
    overrides: dict[str, list[str]] = {}
    for assignment in assignments:
        node, _, rest = assignment.partition(".")
        if not rest or "=" not in rest:
            raise ValueError(f"--set expects NODE.PARAM=VALUE, got {assignment!r}")
        param, _, value = rest.partition("=")
        overrides.setdefault(node, []).append(f"{param}:={value}")
    return overrides


def _arguments_of(graph: str | None):
    """The launch arguments of one graph, or of every graph (graph None), by name."""
    seen = {}
    for name in ([graph] if graph else GRAPHS):
        for argument in graph_arguments(name):
            seen.setdefault(argument.name, argument)
    return seen


def build_parser(graph: str | None = None) -> argparse.ArgumentParser:
    """The runner's options; the launch arguments are those of `graph` (all graphs' if None),
    so that `graph demo --help` lists the demo's only."""
    parser = argparse.ArgumentParser(prog="python -m biosig_ros.graph",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("graph", choices=sorted(GRAPHS))
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a parameter of one of the graph's nodes, e.g. --set "
                             "replay.loop=false" + (f" (nodes: {', '.join(_node_names(graph))})"
                                                    if graph else ""))
    parser.add_argument("--arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="a launch argument, as `ros2 launch ... NAME:=VALUE`")
    parser.add_argument("--network", action="store_true",
                        help="let demo/simulated graphs be discovered from other machines")
    parser.add_argument("--dds-shared-memory", action="store_true",
                        help="leave Fast DDS' transports to the environment (shared memory: a "
                             "node killed with SIGKILL can stall the graph, docs/graphs.md)")
    title = (f"launch arguments of the {graph} graph (see docs/graphs.md)" if graph else
             "launch arguments of every graph (`GRAPH --help` lists one graph's)")
    arguments = parser.add_argument_group(title)
    for name, argument in _arguments_of(graph).items():
        arguments.add_argument(f"--{name.replace('_', '-')}", dest=f"arg_{name}", default=None,
                               metavar=argument.type.__name__.upper(),
                               help=argument.description)
    return parser


def _node_names(graph: str) -> list[str]:
    return [spec.name for spec in GRAPHS[graph] if spec.is_ros_node]


def chosen_graph(argv: list[str]) -> str | None:
    """The graph named on the command line (the first word that is one), before parsing."""
    return next((word for word in argv if word in GRAPHS), None)


def check_override_nodes(graph: str, specs, overrides: dict[str, list[str]]) -> None:
    """ValueError naming a --set node that this run does not start (ignored silently before)."""
    running = {spec.name for spec in specs if spec.is_ros_node}
    for node in overrides:
        if node in running:
            continue
        spec = next((s for s in GRAPHS[graph] if s.name == node), None)
        if spec is not None and not spec.is_ros_node:
            raise ValueError(f"--set {node}.*: '{node}' is not a ROS node (it has no "
                             "parameters; its options are launch arguments, see --help)")
        if spec is not None and spec.started_by:
            raise ValueError(f"--set {node}.*: node '{node}' is started only with "
                             f"--{spec.started_by.replace('_', '-')} true")
        raise ValueError(f"--set {node}.*: the {graph} graph has no node '{node}' (its nodes: "
                         f"{', '.join(sorted(running))})")


def argument_values(args: argparse.Namespace) -> dict[str, str]:
    """The launch arguments given, by name (named options win over --arg)."""
    values = {}
    for item in args.arg:
        name, separator, value = item.partition(":=")
        if not separator:
            raise ValueError(f"--arg expects NAME:=VALUE, got {item!r}")
        values[name] = value
    values.update({key[4:]: value for key, value in vars(args).items()
                   if key.startswith("arg_") and value is not None})
    return values


def _caller_path(path: str) -> str:
    """path as the user meant it: relative to where tools/run was called from."""
    base = os.environ.get("BIOSIG_ROS_CALLER_DIR", os.getcwd())
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def user_files(specs: tuple[NodeSpec, ...], overrides: dict[str, list[str]],
               recording: str | None, model: str | None) -> tuple[NodeSpec, ...]:
    """--recording / --model as parameter overrides: the replay plays the user's file with
    config/replay.yaml (names from the file, not the demo's abd.bio names), IK, the
    replay's marker report and the live view's skeleton use the model. Returns the graph's
    specs, adjusted."""
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

    document = yaml.safe_load((config_dir() / "replay.yaml").read_text(encoding="utf-8"))
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


def graph_commands(graph: str, values: dict[str, str], overrides: dict[str, list[str]],
                   scratch: Path) -> dict[str, list[str]]:
    """The command of every process of the graph with these argument values (ValueError
    naming a bad one)."""
    values = dict(values)
    node_overrides(graph, {name: "" for name in values})  # ValueError for a foreign name
    namespace = values.pop("namespace", "")
    specs = tuple(spec for spec in GRAPHS[graph] if started(spec, values))
    check_override_nodes(graph, specs, overrides)
    recording, model = values.pop("recording", "") or None, values.pop("model", "") or None
    if recording is not None or model is not None:
        specs = user_files(specs, overrides, recording, model)
    if recording is not None and any(s.name == "emg_processing" for s in specs):
        # User overrides come last and win.
        overrides["emg_processing"] = (emg_layout_overrides(overrides)
                                       + overrides.get("emg_processing", []))
    params_files = {}
    for spec in specs:
        given = values.pop(f"{spec.name}_params_file", "")
        if given:
            path = Path(_caller_path(given))
            path = path if path.is_file() else resolve_data_path(given)
            if not path.is_file():
                raise ValueError(f"argument '{spec.name}_params_file': no file {given}")
            params_files[spec.name] = str(path.resolve())
    if values.get("record_directory"):
        values["record_directory"] = _caller_path(values["record_directory"])
    per_node = node_overrides(graph, values)
    return {spec.name: command_for(spec, overrides, namespace, per_node, params_files, scratch)
            for spec in specs}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    # --help shows the chosen graph's arguments; parsing accepts every graph's, so that one of
    # another graph gets the line naming the graph's own (graph_commands) rather than argparse's.
    helping = any(word in ("-h", "--help") for word in words)
    args = build_parser(chosen_graph(words) if helping else None).parse_args(words)
    for note in choose_transport(os.environ, args.graph in LOCAL_GRAPHS and not args.network,
                                 args.dds_shared_memory):
        print(f"[graph] {note}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="biosig_ros-graph-"))
    try:
        commands = graph_commands(args.graph, argument_values(args),
                                  parse_overrides(args.set), scratch)
    except ValueError as error:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"graph: {error}", file=sys.stderr)
        return CONFIG_ERROR_STATUS

    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    graph = Graph(commands)
    started = time.monotonic()
    status = 0
    try:
        while not interrupted.wait(0.2):
            ended = graph.supervise()
            if ended is not None:
                status = ended
                break
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
        graph.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("[graph] stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
