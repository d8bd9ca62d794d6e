"""The launch files cannot run here (no launch/launch_ros on PyPI): check what can be checked.

Each launch file is executed against minimal stand-ins of launch and launch_ros that record
what the file asks for; every executable must exist (scripts/ and the colcon install space)
and run a module with main(), and every parameter file must exist with a `/**` section.
"""
import importlib
import runpy
import sys
import types
from pathlib import Path

import pytest
import yaml

from biosig_ros.graph_spec import EXECUTABLES, GRAPHS, TOOLS

from ros_harness import REPO

LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_launch(monkeypatch):
    modules = {
        "launch": types.ModuleType("launch"),
        "launch.actions": types.ModuleType("launch.actions"),
        "launch_ros": types.ModuleType("launch_ros"),
        "launch_ros.actions": types.ModuleType("launch_ros.actions"),
    }
    modules["launch"].LaunchDescription = type("LaunchDescription", (Recorded,), {})
    modules["launch.actions"].ExecuteProcess = type("ExecuteProcess", (Recorded,), {})
    modules["launch_ros.actions"].Node = type("Node", (Recorded,), {})
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return modules


def test_there_is_a_launch_file_per_graph():
    assert {p.name.removesuffix(".launch.py") for p in LAUNCH_FILES} == set(GRAPHS)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_real_executables_and_parameter_files(launch_file, fake_launch):
    description = runpy.run_path(str(launch_file))["generate_launch_description"]()
    (actions,) = description.args
    graph = GRAPHS[launch_file.name.removesuffix(".launch.py")]
    assert len(actions) == len(graph)
    install_lib = REPO / "install" / "biosig_ros" / "lib" / "biosig_ros"
    for action, spec in zip(actions, graph):
        if spec.is_ros_node:
            assert type(action).__name__ == "Node"
            assert action.kwargs["package"] == "biosig_ros"
            executable = action.kwargs["executable"]
            assert action.kwargs["name"] == spec.name
            for params_file in action.kwargs["parameters"]:
                path = Path(params_file)
                assert path.is_file(), params_file
                assert "/**" in yaml.safe_load(path.read_text()), (
                    f"{path.name} has no '/**' section (it must apply whatever the node's name)")
        else:
            assert type(action).__name__ == "ExecuteProcess"
            executable = Path(action.kwargs["cmd"][0]).name
            assert Path(action.kwargs["cmd"][0]).is_file()
            for argument in action.kwargs["cmd"][1:]:
                assert "{share}" not in argument
        script = REPO / "scripts" / executable
        assert script.is_file() and script.stat().st_mode & 0o111, f"scripts/{executable}"
        assert f"from {EXECUTABLES[executable]} import main" in script.read_text()
        assert (install_lib / executable).exists(), f"{executable} not installed by colcon"
        assert callable(importlib.import_module(EXECUTABLES[executable]).main)


def test_every_installed_script_runs_a_known_module():
    scripts = {p.name for p in (REPO / "scripts").iterdir()}
    assert scripts == set(EXECUTABLES) | set(TOOLS)
    for name, module in {**EXECUTABLES, **TOOLS}.items():
        assert f"from {module} import main" in (REPO / "scripts" / name).read_text()
