"""Graph options that say what they do (#22): `--help` lists the chosen graph's launch
arguments only; `--set` for a node the run does not start is one line and exit status 2,
before any process starts."""
import subprocess
import sys

import pytest

from biosig_ros.graph_spec import GRAPHS, graph_arguments


def run_graph(*words, timeout=60):
    return subprocess.run([sys.executable, "-m", "biosig_ros.graph", *words],
                          capture_output=True, text=True, timeout=timeout)


def option(name: str) -> str:
    return f"--{name.replace('_', '-')}"


@pytest.mark.integration
@pytest.mark.parametrize("graph", ["demo", "lab", "custom_device"])
def test_help_lists_the_chosen_graphs_arguments_only(graph):
    result = run_graph(graph, "--help")
    assert result.returncode == 0, result.stderr
    own = {a.name for a in graph_arguments(graph)}
    others = {a.name for g in GRAPHS for a in graph_arguments(g)} - own
    assert others, "the graphs should differ in their arguments"
    for name in own:
        assert option(name) in result.stdout, name
    for name in others:
        assert f"{option(name)} " not in result.stdout, name
    assert f"launch arguments of the {graph} graph" in result.stdout


@pytest.mark.integration
def test_help_without_a_graph_still_lists_every_argument():
    result = run_graph("--help")
    assert result.returncode == 0 and "--vicon-host" in result.stdout and \
        "--recording" in result.stdout


@pytest.mark.parametrize("words, message", [
    (("demo", "--set", "vicon_markers.host=10.0.0.1"),
     "the demo graph has no node 'vicon_markers'"),
    (("demo", "--set", "mcap_recorder.flush_period=1.0"),
     "node 'mcap_recorder' is started only with --record-mcap true"),
    (("simulated_devices", "--set", "trigno_sim.port=1"), "'trigno_sim' is not a ROS node"),
    (("demo", "--set", "replay"), "--set expects NODE.PARAM=VALUE"),
])
@pytest.mark.integration
def test_set_for_a_node_not_started_is_one_line_and_status_2(words, message):
    result = run_graph(*words, "--duration", "30")
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "[graph] stopped" not in result.stdout   # nothing was started


def test_set_for_a_started_node_is_accepted():
    from biosig_ros.graph import graph_commands, parse_overrides
    import tempfile
    from pathlib import Path

    commands = graph_commands("demo", {"record_mcap": "true"},
                              parse_overrides(["mcap_recorder.flush_period=1.0"]),
                              Path(tempfile.mkdtemp()))
    assert "flush_period:=1.0" in commands["mcap_recorder"]
