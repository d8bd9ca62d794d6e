"""Honest parameters, across processes, for every node: the parameters a running node declares
are those of its settings dataclasses (parameter_docs.NODE_SETTINGS, from which the docs are
generated) with their descriptions; a read-only one set over the SetParameters service is
refused with a reason; a runtime one changes behaviour; an unknown key in a parameter file is
reported, naming the key and the node. The nodes are every node executable of graph_spec
(test_every_node_executable_is_checked keeps it so)."""
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import (DescribeParameters, GetParameters, ListParameters,
                                SetParameters)
from rclpy.parameter import Parameter

from biosig_ros.graph_spec import EXECUTABLES, GRAPHS
from biosig_ros.msg import SignalChunk
from biosig_ros.ros.parameter_docs import node_fields
from biosig_ros.srv import CalibrateTorque
from biosig_ros.settings import field_default

from ros_harness import NodeProcess, RosProbe, shipped_parameters
from test_qos_outputs import free_port_base

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

UNKNOWN = "not_a_parameter_of_any_node"
# Device nodes publish under other names here: the replay feeds the processing nodes.
DEVICE_REMAPS = ["--ros-args", "-r", "emg/raw:=trigno/emg/raw", "-r", "markers:=vicon/markers"]


def _node(executable, parameters, args=()):
    return EXECUTABLES[executable], executable, parameters, list(args)


def node_table(port_base, record_directory, mcap_directory):
    """name -> (module, executable, parameters, extra args): the parameters a real graph gives
    each node (its shipped files), with ports and directories of this test."""
    vicon = {**shipped_parameters("vicon_markers.yaml"), **shipped_parameters("vicon_sim.yaml")}
    return {
        # At half speed: the checks need data flowing, not its rate (the whole chain at 1x
        # took a core for the minute this module runs).
        "replay": _node("replay_node", shipped_parameters("replay_abd.yaml", speed=0.5)),
        "trigno_emg": _node("trigno_emg_node", shipped_parameters(
            "trigno_emg.yaml", command_port=port_base, emg_port=port_base + 3,
            aux_port=port_base + 4), DEVICE_REMAPS),
        "vicon_markers": _node("vicon_markers_node", vicon, DEVICE_REMAPS),
        "emg_processing": _node("emg_processing_node", shipped_parameters("emg_processing.yaml")),
        "imu_processing": _node("imu_processing_node", shipped_parameters("imu_processing.yaml")),
        "ik": _node("ik_node", shipped_parameters("ik_wu.yaml")),
        "bridge": _node("bridge_node", shipped_parameters(
            "bridge.yaml", port=0, record_on_start=True,
            record_directory=str(record_directory))),
        "monitor": _node("topic_monitor", shipped_parameters("monitor.yaml")),
        # any free port, no skeleton (no model to load); no browser is needed to declare.
        "live_view": _node("live_view_node",
                           shipped_parameters("live_view.yaml", port=0, model_path="")),
        "mcap_recorder": _node("mcap_recorder", shipped_parameters(
            "mcap_recorder.yaml", record_on_start=True, record_directory=str(mcap_directory))),
        # Custom devices, not started (autostart false): their parameters are declared anyway.
        "udp_amplifier": _node("udp_amplifier_node",
                               shipped_parameters("udp_amplifier.yaml", autostart=False)),
        "biosiglive_source": _node("biosiglive_source_node",
                                   {"autostart": False, "topic": "biosiglive/raw"}),
        # The exo_demo graph's nodes, with its files (assist starts disabled).
        # A pose waits for its envelope however loaded the machine (the shipped 50 ms left
        # most poses unpaired beside the whole suite: ~/calibrate then found 1 frame in 1 s).
        "torque": _node("torque_node", shipped_parameters("torque.yaml", pairing_wait_s=5.0)),
        "assist": _node("assist_node", shipped_parameters("assist.yaml")),
        "sim_exo": _node("sim_exo_node", shipped_parameters("sim_exo.yaml")),
    }


# Nodes whose checks need another one running (the replay feeds them).
NEEDS = {"emg_processing": {"replay"}, "monitor": {"replay"}, "bridge": {"replay"},
         "mcap_recorder": {"replay"}, "ik": {"replay"},
         "torque": {"replay", "emg_processing", "ik"}}  # ~/calibrate needs envelope and poses


def selected_nodes(request) -> set[str]:
    """The nodes the selected tests of this module use (with what they need), so that
    `-k mcap_recorder` does not start every node on a loaded machine."""
    names = {item.callspec.params["name"] for item in request.session.items
             if getattr(item, "module", None) is request.module
             and "name" in getattr(getattr(item, "callspec", None), "params", {})}
    return names.union(*(NEEDS.get(name, set()) for name in names)) or set(NAMES)


@pytest.fixture(scope="module")
def running(request, tmp_path_factory):
    port_base = free_port_base()
    record_directory = tmp_path_factory.mktemp("recordings")
    mcap_directory = tmp_path_factory.mktemp("mcap")
    table = node_table(port_base, record_directory, mcap_directory)
    wanted = selected_nodes(request)
    if not {"emg_processing", "ik"} <= wanted:  # the replay would wait for them (30 s)
        table["replay"][2]["wait_for_nodes"] = []
    simulator = NodeProcess("biosig_ros.devices.trigno_simulator", "trigno_sim", ros=False, args=[
        "--recording", "data/abd.bio", "--loop", "--port-base", str(port_base)]
    ) if "trigno_emg" in wanted else None
    nodes = {name: NodeProcess(module, name, {**params, UNKNOWN: 1}, args=args)
             for name, (module, _, params, args) in table.items() if name in wanted}
    probe = RosProbe()
    try:
        for name, node in nodes.items():
            assert node.wait_for_output("is not a parameter of this node", timeout=120), (
                name, node.output())
        yield {"nodes": nodes, "probe": probe, "table": table, "records": record_directory,
               "mcap": mcap_directory, "calibrations": tmp_path_factory.mktemp("torque")}
    finally:
        probe.close()
        for node in nodes.values():
            node.stop()
        if simulator is not None:
            simulator.stop()


NAMES = list(node_table(0, "", ""))


def test_every_node_executable_is_checked():
    """No subprocess: the table holds every node executable of graph_spec (a new node cannot be
    left out of these checks silently), and every ROS node of a graph is one of them."""
    checked = [executable for _, executable, _, _ in node_table(0, "", "").values()]
    nodes = {e for e, module in EXECUTABLES.items() if module.startswith("biosig_ros.nodes.")}
    assert not nodes - set(checked), f"add {sorted(nodes - set(checked))} to node_table"
    assert sorted(checked) == sorted(nodes), "node_table: one entry per node executable"
    in_graphs = {(spec.executable, spec.is_ros_node) for graph in GRAPHS.values()
                 for spec in graph}
    assert {e for e, ros in in_graphs if ros} <= nodes
    assert not {e for e, ros in in_graphs if not ros} & nodes


def _set(probe, node, name, value):
    request = SetParameters.Request()
    request.parameters = [Parameter(name, value=value).to_parameter_msg()]
    return probe.call(SetParameters, f"/{node}/set_parameters", request, timeout=60).results[0]


@pytest.mark.parametrize("name", NAMES)
def test_unknown_key_in_a_parameter_file_is_reported(running, name):
    output = running["nodes"][name].output()
    assert (f"parameter '{UNKNOWN}' given to node '/{name}' is not a parameter of this node"
            in output), output


@pytest.mark.parametrize("name", NAMES)
def test_declared_parameters_are_the_documented_settings(running, name):
    probe, executable = running["probe"], running["table"][name][1]
    request = ListParameters.Request()
    listed = probe.call(ListParameters, f"/{name}/list_parameters", request, timeout=60)
    declared = {n for n in listed.result.names
                if n not in ("use_sim_time", "start_type_description_service")
                and not n.startswith("qos_overrides.")}
    fields = {field_name: field for field_name, field, _ in node_fields(executable)}
    assert declared == set(fields), "update parameter_docs.NODE_SETTINGS"
    described = probe.call(DescribeParameters, f"/{name}/describe_parameters",
                           DescribeParameters.Request(names=sorted(fields)), timeout=60)
    for descriptor in described.descriptors:
        field = fields[descriptor.name]
        assert descriptor.description == field.metadata.get("doc", ""), descriptor.name
        assert descriptor.read_only == (not field.metadata.get("runtime", False)), descriptor.name


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_value_of_its_declared_type(running, name):
    """What `ros2 param dump` and rqt_reconfigure do: list every parameter, get them all in
    one request. None is NOT_SET (an empty list is an empty list of its type), and each value
    has its descriptor's type."""
    probe = running["probe"]
    listed = probe.call(ListParameters, f"/{name}/list_parameters", ListParameters.Request(),
                        timeout=60).result.names
    values = probe.call(GetParameters, f"/{name}/get_parameters",
                        GetParameters.Request(names=listed), timeout=60).values
    described = probe.call(DescribeParameters, f"/{name}/describe_parameters",
                           DescribeParameters.Request(names=listed), timeout=60).descriptors
    assert len(values) == len(listed) == len(described) > 2
    unset = [n for n, v in zip(listed, values) if v.type == ParameterType.PARAMETER_NOT_SET]
    assert not unset, f"{name}: NOT_SET {unset}"
    mistyped = [(n, v.type, d.type) for n, v, d in zip(listed, values, described)
                if d.type != ParameterType.PARAMETER_NOT_SET and v.type != d.type]
    assert not mistyped, mistyped
    fields = {field_name: field for field_name, field, _ in node_fields(running["table"][name][1])}
    empty_lists = [n for n, v in zip(listed, values) if n in fields and v.type in (
        ParameterType.PARAMETER_STRING_ARRAY, ParameterType.PARAMETER_DOUBLE_ARRAY,
        ParameterType.PARAMETER_INTEGER_ARRAY) and not (
        v.string_array_value or v.double_array_value or v.integer_array_value)]
    if name in ("emg_processing", "ik"):  # mvc, marker_name_map: [] in the shipped files
        assert empty_lists, "these nodes have empty list parameters: the check must see them"


@pytest.mark.parametrize("name", NAMES)
def test_a_read_only_parameter_set_at_run_time_is_refused_with_a_reason(running, name):
    executable = running["table"][name][1]
    read_only = [(n, f) for n, f, _ in node_fields(executable) if not f.metadata.get("runtime")]
    field_name, field = read_only[0]
    value = field_default(field)
    result = _set(running["probe"], name, field_name, value if value not in (None, []) else "x")
    assert not result.successful
    assert field_name in result.reason or "read-only" in result.reason, result.reason


def _envelopes(probe, seconds):
    received = probe.subscribe(SignalChunk, "/emg/envelope")
    probe.wait_until(lambda: False, timeout=seconds)
    return [m for _, m in list(received)]


def _emg_processing_publish_rate(running):
    probe = running["probe"]
    before = _envelopes(probe, 3)
    assert before and {m.sample_count for m in before} == {20}, [m.sample_count for m in before]
    assert _set(probe, "emg_processing", "publish_rate", 100.0).successful
    after = _envelopes(probe, 3)
    assert after and {m.sample_count for m in after[5:]} == {1}
    indices = [m.first_sample_index for m in before + after]
    assert all(b > a for a, b in zip(indices, indices[1:])), (
        "indices must stay monotonic", [(m.first_sample_index, m.sample_count) for m in before[-3:] + after[:8]])
    refused = _set(probe, "emg_processing", "publish_rate", 3.0)  # does not divide 2000 Hz
    assert not refused.successful and "publish_rate" in refused.reason


def _trigno_publish_rate(running):
    probe = running["probe"]
    received = probe.subscribe(SignalChunk, "/trigno/emg/raw")
    assert probe.wait_until(lambda: len(received) >= 20, timeout=60)
    assert {m.sample_count for _, m in list(received)} == {20}  # 100 chunks/s at 2 kHz
    assert _set(probe, "trigno_emg", "publish_rate", 50.0).successful

    def sizes():
        return [m.sample_count for _, m in list(received)]
    # A loaded probe may still be taking chunks published before the change: wait for the new
    # size, then every chunk after the first of it must have it.
    assert probe.wait_until(lambda: sizes().count(40) >= 10, timeout=60), sizes()[-30:]
    got = sizes()
    changed_at = got.index(40)
    assert set(got[:changed_at]) == {20} and set(got[changed_at:]) == {40}, got
    indices = [(m.first_sample_index, m.sample_count) for _, m in list(received)]
    assert all(a + n == b for (a, n), (b, _) in zip(indices, indices[1:])), (
        "indices must stay contiguous through the change")


def _monitor_period(running):
    """period is read as the monitor runs. Checked by what a loaded machine cannot fake (it
    only delays and thins the reports): set to an hour, no report comes for 3 s (at the
    default 1 s, three would); set back to 0.25 s, reports come again."""
    node = running["nodes"]["monitor"]
    probe = running["probe"]

    def reports():
        return node.output().count("markers ")

    start = reports()
    assert probe.wait_until(lambda: reports() > start), node.output()[-3000:]
    assert _set(probe, "monitor", "period", 3600.0).successful
    time.sleep(1.0)  # a report under way when the change came
    quiet_from = reports()
    time.sleep(3.0)
    assert reports() == quiet_from, node.output()[-3000:]
    assert _set(probe, "monitor", "period", 0.25).successful
    assert probe.wait_until(lambda: reports() > quiet_from + 2), node.output()[-3000:]


def _ik_residual_warning(running):
    """residual_warning is read as IK runs: a threshold below every residual makes the node's
    diagnostics name the residual, one above every residual stops it."""
    probe = running["probe"]
    statuses = probe.subscribe(DiagnosticArray, "/diagnostics")

    def ik_messages_since(count):
        return [s.message for _, array in list(statuses)[count:] for s in array.status
                if s.name.split("/")[-1].split(".")[-1] == "ik"]

    assert _set(probe, "ik", "residual_warning", 1e-6).successful
    start = len(statuses)
    assert probe.wait_until(lambda: any("mean marker residual" in m
                                        for m in ik_messages_since(start)), timeout=60), (
        ik_messages_since(start))
    assert _set(probe, "ik", "residual_warning", 10.0).successful
    time.sleep(1.5)
    start = len(statuses)
    assert probe.wait_until(lambda: len(ik_messages_since(start)) >= 3, timeout=60)
    assert not any("mean marker residual" in m for m in ik_messages_since(start)[1:])


def _max_file_seconds(node, directory, pattern):
    """A recorder given max_file_seconds at run time starts new parts."""
    def check(running):
        files = lambda: sorted(running[directory].rglob(pattern))  # noqa: E731
        assert running["probe"].wait_until(lambda: len(files()) >= 1, timeout=60)
        before = len(files())
        assert _set(running["probe"], node, "max_file_seconds", 1.0).successful
        assert running["probe"].wait_until(lambda: len(files()) >= before + 2, timeout=60), (
            files())
    return check


def _torque_calibration_file(running):
    """calibration_file is read when ~/calibrate runs: set at run time, the calibration of a
    request naming no file is saved there. IK skips frames on a loaded machine (max_lag
    20 ms): 1 s of stream once held a single pose, 5 s once 8, too few to fit (refused, as
    the node should); a longer window is asked for then."""
    saved = running["calibrations"] / "gains.yaml"
    assert _set(running["probe"], "torque", "calibration_file", str(saved)).successful
    for duration in (5.0, 20.0, 60.0):  # 60: the node's window_s
        response = running["probe"].call(CalibrateTorque, "/torque/calibrate",
                                         CalibrateTorque.Request(duration=duration), timeout=90)
        if response is None or "too few to calibrate" not in response.message:
            break
    assert response is not None and response.success, (
        response, running["nodes"]["torque"].output()[-3000:])
    assert f"saved to {saved}" in response.message and saved.is_file(), response.message


# A check of what a runtime parameter changes, per node that has one.
BEHAVIOUR = {"emg_processing": _emg_processing_publish_rate, "monitor": _monitor_period,
             "bridge": _max_file_seconds("bridge", "records", "*.bio"),
             "trigno_emg": _trigno_publish_rate, "ik": _ik_residual_warning,
             "mcap_recorder": _max_file_seconds("mcap_recorder", "mcap", "*.mcap"),
             "torque": _torque_calibration_file}


@pytest.mark.parametrize("name", NAMES)
def test_a_runtime_parameter_changes_behaviour(running, name):
    executable = running["table"][name][1]
    runtime = [n for n, f, _ in node_fields(executable) if f.metadata.get("runtime")]
    if not runtime:
        pytest.skip(f"{name} has no runtime parameter (every one is read at start)")
    assert name in BEHAVIOUR, f"{name} has runtime parameters {runtime}: add a behaviour check"
    BEHAVIOUR[name](running)
