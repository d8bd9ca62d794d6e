"""The launch files cannot run here (no launch/launch_ros on PyPI): check what can be checked.

Each launch file is evaluated against stand-ins of launch and launch_ros (launch_fakes.py)
that do what `ros2 launch` does with declared arguments, OpaqueFunctions, namespaces and
includes: every executable must exist (scripts/ and the colcon install space) and run a module
with main(); every parameter file must exist with a `/**` section; the declared arguments are
those of graph_spec and reach the nodes after the parameter files.
"""
import importlib
from pathlib import Path

import pytest
import yaml

import launch_fakes
from biosig_ros.graph_spec import (CONFIG_ERROR_STATUS, EXECUTABLES, GRAPHS, RESPAWN_DELAY_S,
                                   TOOLS, graph_arguments)

from ros_harness import REPO

LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


def graph_of(launch_file: Path) -> str:
    return launch_file.name.removesuffix(".launch.py")


@pytest.fixture
def fake_launch(monkeypatch):
    return launch_fakes.install(monkeypatch)


def run(launch_file, **arguments):
    import runpy
    description = runpy.run_path(str(launch_file))["generate_launch_description"]()
    return launch_fakes.launch(description, arguments)


def test_there_is_a_launch_file_per_graph():
    assert {graph_of(p) for p in LAUNCH_FILES} == set(GRAPHS)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_real_executables_and_parameter_files(launch_file, fake_launch):
    graph = GRAPHS[graph_of(launch_file)]
    # Every process, those started only on request included.
    launched = run(launch_file, **{s.started_by: "true" for s in graph if s.started_by})
    assert len(launched.nodes) + len(launched.processes) == len(graph)
    install_lib = REPO / "install" / "biosig_ros" / "lib" / "biosig_ros"
    for spec in graph:
        if spec.is_ros_node:
            action = launched.node(spec.name)
            assert action.kwargs["package"] == "biosig_ros"
            executable = action.kwargs["executable"]
            assert action.effective_namespace is None  # no namespace unless asked
            assert spec.started_by or all(isinstance(p, str) for p in action.kwargs[
                "parameters"]), "without arguments, only the parameter files"
            for params_file in (p for p in action.kwargs["parameters"] if isinstance(p, str)):
                path = Path(params_file)
                assert path.is_file(), params_file
                assert "/**" in yaml.safe_load(path.read_text(encoding="utf-8")), (
                    f"{path.name} has no '/**' section (it must apply whatever the node's name)")
        else:
            (action,) = [p for p in launched.processes if p.kwargs["name"] == spec.name]
            executable = Path(action.kwargs["cmd"][0]).name
            assert Path(action.kwargs["cmd"][0]).is_file()
            for argument in action.kwargs["cmd"][1:]:
                assert "{share}" not in argument
        assert action.kwargs["respawn"] is True
        assert action.kwargs["respawn_delay"] == RESPAWN_DELAY_S
        script = REPO / "scripts" / executable
        assert script.is_file() and script.stat().st_mode & 0o111, f"scripts/{executable}"
        assert f"from {EXECUTABLES[executable]} import main" in script.read_text(encoding="utf-8")
        assert (install_lib / executable).exists(), f"{executable} not installed by colcon"
        assert callable(importlib.import_module(EXECUTABLES[executable]).main)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_declared_arguments_are_the_graph_specs_with_descriptions(launch_file, fake_launch):
    launched = run(launch_file)
    declared = {a.name: a.kwargs for a in launched.declared}
    expected = graph_arguments(graph_of(launch_file))
    assert list(declared) == [a.name for a in expected]
    assert "namespace" in declared
    if any(s.name == "bridge" for s in GRAPHS[graph_of(launch_file)]):
        assert {"port", "bind_address", "record", "record_directory"} <= set(declared)
    for argument in expected:
        kwargs = declared[argument.name]
        assert kwargs["description"] == argument.description and len(argument.description) > 20
        if argument.name.endswith("_params_file"):
            assert Path(kwargs["default_value"]).is_file()
            assert Path(kwargs["default_value"]).name == argument.default
        else:
            assert kwargs["default_value"] == ""
    node_names = {s.name for s in GRAPHS[graph_of(launch_file)] if s.is_ros_node}
    assert {f"{n}_params_file" for n in node_names} <= set(declared)


def _given(node) -> dict:
    """The node's argument values: the dict after its parameter files."""
    parameters = node.kwargs["parameters"]
    dicts = [p for p in parameters if isinstance(p, dict)]
    if not dicts:
        return {}
    assert parameters[-1] is dicts[0], "arguments must come after the parameter files"
    return {key: (value.value, value.kwargs["value_type"]) for key, value in dicts[0].items()}


def test_demo_arguments_reach_the_nodes_after_the_parameter_files(fake_launch, tmp_path):
    params = tmp_path / "my_ik.yaml"
    params.write_text("/**:\n  ros__parameters:\n    method: least_squares\n")
    launched = run(REPO / "launch" / "demo.launch.py", namespace="s1", port="6001",
                   bind_address="0.0.0.0", record="false", record_directory=str(tmp_path),
                   recording="data/other.bio", loop="false", speed="2",
                   model="data/other.bioMod", ik_params_file=str(params))
    assert {n.effective_namespace for n in launched.nodes} == {"s1"}
    assert _given(launched.node("bridge")) == {
        "port": (6001, int), "bind_address": ("0.0.0.0", str), "record_on_start": (False, bool),
        "record_directory": (str(tmp_path), str)}
    replay = launched.node("replay")
    assert _given(replay) == {
        "file": ("data/other.bio", str), "loop": (False, bool), "speed": (2.0, float),
        "model_path": ("data/other.bioMod", str)}
    # A recording of the user's: names and rates from the file (replay.yaml), not abd.bio's.
    assert Path(replay.kwargs["parameters"][0]).name == "replay.yaml"
    ik = launched.node("ik")
    assert _given(ik) == {"model_path": ("data/other.bioMod", str)}
    assert ik.kwargs["parameters"][0] == str(params)  # replaces the shipped ik_wu.yaml
    assert _given(launched.node("emg_processing")) == {}
    default = run(REPO / "launch" / "demo.launch.py")
    assert Path(default.node("replay").kwargs["parameters"][0]).name == "replay_abd.yaml"


@pytest.mark.parametrize("graph", ["demo", "simulated_devices", "lab"])
def test_the_mcap_recorder_runs_only_when_asked_for(fake_launch, graph, tmp_path):
    launch_file = REPO / "launch" / f"{graph}.launch.py"
    names = {n.kwargs["name"] for n in run(launch_file).nodes}
    assert "bridge" in names and "mcap_recorder" not in names
    assert "mcap_recorder" not in {n.kwargs["name"] for n in run(
        launch_file, record_mcap="false").nodes}
    launched = run(launch_file, record_mcap="true", record_directory=str(tmp_path))
    recorder = launched.node("mcap_recorder")
    assert Path(recorder.kwargs["parameters"][0]).name == "mcap_recorder.yaml"
    assert _given(recorder) == {"record_on_start": (True, bool),
                                "record_directory": (str(tmp_path), str)}
    assert _given(launched.node("bridge"))["record_directory"] == (str(tmp_path), str)
    with pytest.raises(ValueError, match="argument 'record_mcap' must be true or false"):
        run(launch_file, record_mcap="yes please")


def test_simulated_devices_port_base_moves_node_and_simulator(fake_launch):
    launched = run(REPO / "launch" / "simulated_devices.launch.py", trigno_port_base="51040",
                   vicon_sim_port="51801", vicon_host="127.0.0.1:51801")
    assert _given(launched.node("trigno_emg")) == {
        "command_port": (51040, int), "emg_port": (51043, int), "aux_port": (51044, int)}
    trigno_sim, vicon_sim = launched.processes
    cmd = trigno_sim.kwargs["cmd"]
    assert cmd[cmd.index("--port-base") + 1] == "51040"
    cmd = vicon_sim.kwargs["cmd"]
    assert cmd[0].endswith("vicon_wire_sim")
    assert cmd[len(cmd) - 1 - cmd[::-1].index("--port") + 1] == "51801"    # the last --port wins
    vicon = launched.node("vicon_markers")
    assert [Path(p).name for p in vicon.kwargs["parameters"][:-1]] == [
        "vicon_markers.yaml", "vicon_sim.yaml", "vicon_wire_sim.yaml"]
    assert _given(vicon) == {"host": ("127.0.0.1:51801", str)}


def test_lab_arguments_set_device_addresses_and_subject(fake_launch):
    launched = run(REPO / "launch" / "lab.launch.py", trigno_host="10.0.0.5",
                   vicon_host="10.0.0.6:801", vicon_subject="1")
    assert _given(launched.node("trigno_emg")) == {"host": ("10.0.0.5", str)}
    # "1" stays a string (launch would read an untyped "1" as the integer 1).
    assert _given(launched.node("vicon_markers")) == {
        "host": ("10.0.0.6:801", str), "subject": ("1", str)}


def test_a_bad_argument_value_names_the_argument(fake_launch):
    with pytest.raises(ValueError, match="argument 'port' must be an integer, got 'abc'"):
        run(REPO / "launch" / "demo.launch.py", port="abc")


def test_a_users_launch_file_includes_ours_under_its_namespace(fake_launch, tmp_path):
    user_file = tmp_path / "user.launch.py"
    user_file.write_text(f'''
from launch import LaunchDescription
from launch.actions import GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import PushRosNamespace

def generate_launch_description():
    return LaunchDescription([GroupAction([
        PushRosNamespace("lab_a"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource("{REPO / 'launch' / 'demo.launch.py'}"),
            launch_arguments={{"namespace": "subject1", "port": "6100"}}.items()),
    ])])
''')
    launched = run(user_file)
    assert {n.effective_namespace for n in launched.nodes} == {"lab_a/subject1"}
    assert _given(launched.node("bridge")) == {"port": (6100, int)}


def test_a_configuration_error_shuts_the_launch_down_instead_of_respawning(fake_launch):
    launched = run(REPO / "launch" / "demo.launch.py")
    targets = [h.kwargs["target_action"] for h in launched.handlers]
    assert len(targets) == len(launched.nodes) + len(launched.processes)
    event = type("Exited", (), {})
    for handler in launched.handlers:
        on_exit = handler.kwargs["on_exit"]
        event.returncode = CONFIG_ERROR_STATUS
        (shutdown,) = on_exit(event, None)
        assert type(shutdown).__name__ == "Shutdown" and "configuration error" in (
            shutdown.kwargs["reason"])
        event.returncode = -9
        assert on_exit(event, None) is None


def test_every_installed_script_runs_a_known_module():
    scripts = {p.name for p in (REPO / "scripts").iterdir()}
    assert scripts == set(EXECUTABLES) | set(TOOLS)
    for name, module in {**EXECUTABLES, **TOOLS}.items():
        assert f"from {module} import main" in (REPO / "scripts" / name).read_text(encoding="utf-8")


def test_per_instance_arguments_sim_time_log_level_view_port_frame_prefix(fake_launch):
    """use_sim_time reaches every node (and makes the replay publish /clock), log_level goes
    on every node's command line, live_view_port and frame_prefix to their nodes."""
    launched = run(REPO / "launch" / "demo.launch.py", use_sim_time="true", log_level="debug",
                   live_view_port="8181", frame_prefix="subject_a/")
    for node in launched.nodes:
        name = node.kwargs["name"]
        assert _given(node)["use_sim_time"] == (True, bool), name
        assert node.kwargs["arguments"] == ["--ros-args", "--log-level", "debug"], name
    assert _given(launched.node("replay"))["publish_clock"] == (True, bool)
    assert _given(launched.node("live_view"))["port"] == (8181, int)
    assert _given(launched.node("ik"))["tf_prefix"] == ("subject_a/", str)
    default = run(REPO / "launch" / "demo.launch.py")
    assert all(n.kwargs["arguments"] is None and "use_sim_time" not in _given(n)
               for n in default.nodes)
    with pytest.raises(ValueError, match="argument 'log_level' must be one of debug, info"):
        run(REPO / "launch" / "demo.launch.py", log_level="loud")


def test_use_sim_time_exists_only_where_a_replay_gives_the_clock(fake_launch):
    for launch_file in LAUNCH_FILES:
        names = {a.name for a in run(launch_file).declared}
        has_replay = any(s.name == "replay" for s in GRAPHS[graph_of(launch_file)])
        assert ("use_sim_time" in names) == has_replay, launch_file.name
        assert "log_level" in names


def test_the_launch_names_the_shared_memory_trap_at_start(fake_launch, monkeypatch):
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("FASTRTPS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    (note,) = run(REPO / "launch" / "demo.launch.py").logs
    assert "shared memory" in note and "FASTDDS_DEFAULT_PROFILES_FILE=" in note
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/mine.xml")
    assert run(REPO / "launch" / "demo.launch.py").logs == []
