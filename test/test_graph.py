"""The node graph started without ROS 2 launch: `python -m biosig_ros.graph NAME`."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sensor_msgs.msg import JointState

from biosig_ros.graph_spec import GRAPHS
from biosig_ros.msg import MarkerSet, SignalChunk

from ros_harness import REPO, RosProbe


def start_graph(*args):
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "biosig_ros.graph", *args], cwd=REPO, env=os.environ.copy(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="replace",
        start_new_session=True)


def child_pids(pid):
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, encoding="utf-8",
                            errors="replace")
    return [int(p) for p in result.stdout.split()]


@pytest.mark.integration
def test_demo_graph_runs_the_whole_chain_and_stops_cleanly_on_ctrl_c(tmp_path):
    with RosProbe() as probe:
        raw = probe.subscribe(SignalChunk, "/emg/raw")
        envelope = probe.subscribe(SignalChunk, "/emg/envelope")
        markers = probe.subscribe(MarkerSet, "/markers")
        joints = probe.subscribe(JointState, "/ik/joint_states")
        graph = start_graph("demo", "--set", "bridge.port=0",
                            "--set", f"bridge.record_directory={tmp_path}")
        try:
            flowing = probe.wait_until(
                lambda: min(len(raw), len(envelope), len(markers), len(joints)) >= 300, timeout=120)
            children = child_pids(graph.pid)
        finally:
            graph.send_signal(signal.SIGINT)
            output, _ = graph.communicate(timeout=60)
    assert flowing, (len(raw), len(envelope), len(markers), len(joints), output)
    assert graph.returncode == 0, output
    assert len(children) == len([s for s in GRAPHS["demo"] if not s.started_by]), output
    # Every node process is gone after the runner returns.
    time.sleep(0.5)
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
    assert "[monitor] /emg/raw" in output and "samples/s" in output
    assert "[graph] stopped" in output


@pytest.mark.integration
def test_a_node_that_fails_to_start_stops_the_graph_with_its_status():
    graph = start_graph("demo", "--set", "replay.file=data/missing.bio",
                        "--set", "bridge.port=0")
    output, _ = graph.communicate(timeout=90)
    assert graph.returncode == 2, output
    assert "recording file not found: data/missing.bio" in output
    assert "replay exited with status 2; stopping the graph" in output


def _param_files(command):
    return [command[i + 1] for i, word in enumerate(command) if word == "--params-file"]


def test_runner_options_mirror_the_launch_arguments(tmp_path):
    from biosig_ros.graph import argument_values, build_parser, graph_commands

    args = build_parser().parse_args([
        "demo", "--namespace", "s1", "--port", "6001", "--record-directory", str(tmp_path),
        "--arg", "speed:=2", "--arg", "loop:=false", "--set", "ik.method=least_squares"])
    values = argument_values(args)
    assert values == {"namespace": "s1", "port": "6001", "record_directory": str(tmp_path),
                      "speed": "2", "loop": "false"}
    from biosig_ros.graph import parse_overrides
    commands = graph_commands("demo", values, parse_overrides(args.set), tmp_path)
    assert set(commands) == {spec.name for spec in GRAPHS["demo"]} - {"mcap_recorder"}
    for command in commands.values():
        assert command[command.index("__ns:=/s1") - 1] == "-r"
    bridge_files = _param_files(commands["bridge"])
    assert bridge_files[0].endswith("config/bridge.yaml")
    assert yaml.safe_load(open(bridge_files[-1], encoding="utf-8")) == {"/**": {"ros__parameters": {
        "port": 6001, "record_directory": str(tmp_path)}}}
    assert yaml.safe_load(open(_param_files(commands["replay"])[-1], encoding="utf-8"))["/**"][
        "ros__parameters"] == {"speed": 2.0, "loop": False}
    assert len(_param_files(commands["emg_processing"])) == 1  # no argument for it
    assert commands["ik"][-2:] == ["-p", "method:=least_squares"]


def test_runner_starts_the_mcap_recorder_when_asked_for(tmp_path):
    from biosig_ros.graph import graph_commands

    commands = graph_commands("simulated_devices", {
        "record_mcap": "true", "record_directory": str(tmp_path)}, {}, tmp_path)
    files = _param_files(commands["mcap_recorder"])
    assert [Path(f).name for f in files[:2]] == ["mcap_recorder.yaml", "mcap_recorder_devices.yaml"]
    assert yaml.safe_load(open(files[-1], encoding="utf-8"))["/**"]["ros__parameters"] == {
        "record_on_start": True, "record_directory": str(tmp_path)}
    assert "mcap_recorder" not in graph_commands("simulated_devices", {"record_mcap": "false"},
                                                 {}, tmp_path)


def test_runner_params_file_and_port_base_arguments(tmp_path):
    from biosig_ros.graph import graph_commands

    own = tmp_path / "trigno.yaml"
    own.write_text("/**:\n  ros__parameters:\n    host: 127.0.0.1\n")
    commands = graph_commands("simulated_devices", {
        "trigno_emg_params_file": str(own), "trigno_port_base": "51040"}, {}, tmp_path)
    files = _param_files(commands["trigno_emg"])
    assert files[0] == str(own.resolve())
    assert yaml.safe_load(open(files[-1], encoding="utf-8"))["/**"]["ros__parameters"] == {
        "command_port": 51040, "emg_port": 51043, "aux_port": 51044}
    assert commands["trigno_sim"][-2:] == ["--port-base", "51040"]
    assert "--ros-args" not in commands["trigno_sim"]


def test_runner_refuses_an_argument_of_another_graph_with_status_2(capsys):
    from biosig_ros.graph import main

    assert main(["simulated_devices", "--recording", "x.bio"]) == 2
    assert "graph 'simulated_devices' has no argument 'recording'" in capsys.readouterr().err
    assert main(["demo", "--port", "abc"]) == 2
    assert "argument 'port' must be an integer, got 'abc'" in capsys.readouterr().err


@pytest.mark.integration
def test_a_process_that_keeps_dying_is_restarted_with_a_growing_delay(monkeypatch):
    from biosig_ros import graph as runner

    monkeypatch.setattr(runner, "STABLE_RUN_S", 60.0)
    member = runner.Supervised("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    member.delay = 0.2
    member.start()
    notes, deadline = [], time.monotonic() + 60
    while len(notes) < 3 and time.monotonic() < deadline:
        status = member.poll()
        if status is not None:
            assert status == 3
            notes.append(member.schedule_note())
        time.sleep(0.02)
    member.stop_signal()
    assert notes == ["restarting in 0.2 s", "restarting in 0.4 s", "restarting in 0.8 s"]
    assert member.restarts == 2 and member.delay == 1.6
