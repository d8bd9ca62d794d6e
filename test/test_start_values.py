"""A wrong-typed or out-of-range value given at start, from a parameter file, `-p` or the
runner's `--set`, ends the node with one line naming it and exit status 2; the runner stops
the graph with that status. rcl drops a `-p` value whose type differs from the parameter
file's silently (biosig_ros/ros/given_parameters.py): without the node's own check,
`--set ik.divergence_residual=abc` ran on the file's value."""
import subprocess
import sys

import pytest
import yaml

from biosig_ros.ros.given_parameters import given_values

from graph_harness import GraphProcess
from ros_harness import REPO

REPLAY = [sys.executable, "-m", "biosig_ros.nodes.replay_node", "--ros-args",
          "-r", "__node:=replay", "--params-file", "config/replay_abd.yaml",
          "-p", "wait_for_nodes:=[]"]


def run_replay(*words, timeout=120):
    return subprocess.run(REPLAY + list(words), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("words, expected", [
    (("-p", "speed:=abc"), "parameter 'speed' must be a number, got 'abc' (from the command "
                           "line)"),
    (("-p", "loop:=3"), "parameter 'loop' must be true or false, got 3"),
    (("-p", "clock_rate:=5000.0"), "clock_rate"),
    (("-p", "wait_timeout:=[1, 2]"), "parameter 'wait_timeout' must be a number"),
])
@pytest.mark.integration
def test_a_bad_value_on_the_command_line_ends_the_node_with_one_line(words, expected):
    result = run_replay(*words)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(lines) == 1 and expected in lines[0], lines


@pytest.mark.integration
def test_a_bad_value_in_a_second_parameter_file_is_named_with_the_file(tmp_path):
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("/**:\n  ros__parameters:\n    publish_rate: fast\n")
    result = run_replay("--params-file", str(overlay))
    assert result.returncode == 2, result.stderr
    assert f"parameter 'publish_rate' must be a number, got 'fast' (from {overlay})" in (
        result.stderr), result.stderr


@pytest.mark.integration
def test_the_runner_stops_on_a_wrong_typed_set():
    with GraphProcess("custom_device", "--set", "udp_amplifier.sample_rate=abc") as graph:
        status = graph.process.wait(timeout=180)
    output = graph.output()
    assert status == 2, output[-3000:]
    assert "parameter 'sample_rate' must be a number, got 'abc'" in output, output[-3000:]


def test_given_values_follow_rcl_node_name_wildcards(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"a": 1, "nested": {"b": "x"}}},
        "/s1/ik": {"ros__parameters": {"c": 2.0}},
        "/**/ik": {"ros__parameters": {"d": True}},
        "s2": {"ik": {"ros__parameters": {"e": [1, 2]}}},
        "/replay": {"ros__parameters": {"f": 0}}}))
    argv = ["x", "--ros-args", "--params-file", str(params), "-p", "a:=abc"]
    found = given_values("/s1/ik", argv)
    assert {k: [g.value for g in v] for k, v in found.items()} == {
        "a": [1, "abc"], "nested.b": ["x"], "c": [2.0], "d": [True]}
    assert set(given_values("/s2/ik", argv)) == {"a", "nested.b", "d", "e"}
    assert set(given_values("/ik", argv)) == {"a", "nested.b", "d"}


def test_given_values_read_exponents_as_rcl_does(tmp_path):
    """Python writes small floats as `6e-05`; rcl reads it as a number, PyYAML (YAML 1.1) as a
    string: a list of MVC values written by Python must not be refused as 'not numbers'."""
    parameters = tmp_path / "mvc.yaml"
    parameters.write_text("/**:\n  ros__parameters:\n    scale: 1e3\n", encoding="utf-8")
    argv = ["node", "--ros-args", "--params-file", str(parameters),
            "-p", "mvc:=[1.2e-05, 6e-05, -2E+2]", "-p", "label:=abc"]
    found = {name: [given.value for given in values]
             for name, values in given_values("/emg_processing", argv).items()}
    assert found == {"scale": [1000.0], "mvc": [[1.2e-05, 6e-05, -200.0]], "label": ["abc"]}
