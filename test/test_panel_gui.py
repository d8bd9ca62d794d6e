"""The operator panel (Qt, off screen) connected to running graphs: its curves hold the topics'
values, each button calls its service and shows the answer, an absent service gives a clear
message within its timeout, the namespace chooser finds a namespaced graph.

The panel runs in this process (QT_QPA_PLATFORM=offscreen, the Qt loop pumped by the test);
a RosProbe in another rclpy context is the plain subscriber it is compared with."""
import os
import sys
import threading
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import rclpy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from std_srvs.srv import Trigger  # noqa: E402

from biosig_ros.msg import AssistState, SignalChunk  # noqa: E402
from biosig_ros.panel.model import PanelModel  # noqa: E402
from biosig_ros.panel.qt import QApplication  # noqa: E402
from biosig_ros.panel.widget import PanelWidget  # noqa: E402
from biosig_ros.ros import panel_adapter  # noqa: E402
from biosig_ros.ros.conversions import time_to_seconds  # noqa: E402
from biosig_ros.ros.qos import output_qos  # noqa: E402

from graph_harness import GraphProcess  # noqa: E402
from ros_harness import RosProbe  # noqa: E402
from test_live_view_browser import DEMO_MVC  # noqa: E402

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

STARTUP_S = 150.0  # graphs start slowly on a loaded machine (numba, biorbd, 8 processes)


@pytest.fixture(scope="module")
def app():
    return QApplication.instance() or QApplication([sys.argv[0]])


class Panel:
    """The panel widget and its ROS adapter, in an rclpy context of their own."""

    def __init__(self, app):
        self.app = app
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.adapter = panel_adapter.PanelAdapter(PanelModel(), context=self.context)
        self.widget = PanelWidget(self.adapter)
        self.widget.resize(1400, 860)
        self.widget.show()

    def pump(self, condition, timeout: float) -> bool:
        """Run the Qt loop until condition() holds (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.app.processEvents()
            if condition():
                return True
            time.sleep(0.01)
        self.app.processEvents()
        return bool(condition())

    def press(self, key: str, timeout: float = 60.0):
        """Click a button and wait for the answer it shows."""
        self.widget.answers.pop(key, None)
        self.widget.buttons[key].click()
        assert self.pump(lambda: key in self.widget.answers, timeout), key
        answer = self.widget.answers[key]
        group_label = self.widget.answer_labels[answer.action.group].text()
        assert group_label == answer.line()
        return answer

    def close(self):
        self.widget.close_panel()
        self.widget.close()
        self.adapter.close()
        rclpy.try_shutdown(context=self.context)


def test_a_service_that_never_answers_gives_up_at_its_timeout(app, monkeypatch):
    """A server that takes the request and never answers in time: the button comes back
    with "no answer within" its timeout (shortened here), and works again afterwards."""
    monkeypatch.setattr(panel_adapter, "ANSWER_TIMEOUT_S", 1.0)
    release = threading.Event()

    def slow(request, response):
        release.wait(30)
        response.success, response.message = True, "late"
        return response

    with RosProbe("panel_slow_server") as probe:
        probe.node.create_service(Trigger, "/bridge/stop_recording", slow)
        panel = Panel(app)
        try:
            answer = panel.press("bridge_stop")
            assert not answer.success and not answer.absent
            assert answer.text == "no answer within 1 s"
            assert panel.widget.buttons["bridge_stop"].isEnabled()
        finally:
            release.set()
            panel.close()


def test_exo_demo_in_a_namespace(app):
    """The chooser finds the namespaced exo demo; both torques of torque_node are drawn; the
    assist buttons call its services."""
    with RosProbe("panel_exo_probe") as probe:
        states = probe.subscribe(AssistState, "/subject1/assist/state")
        muscle = probe.subscribe(JointState, "/subject1/torque/muscle", output_qos(1000))
        graph = GraphProcess("exo_demo", "--namespace", "subject1")
        panel = Panel(app)
        widget = panel.widget
        try:
            box = widget.namespace_box
            assert panel.pump(lambda: "/subject1" in [box.itemText(i) for i in range(
                box.count())], STARTUP_S), (panel.adapter.namespaces(), graph.output()[-3000:])
            box.setCurrentText("/subject1")  # as the user picks it
            assert widget.namespace == "/subject1" and not widget.follow_graph
            assert panel.pump(lambda: getattr(widget, "drawn", None) is not None
                              and widget.drawn.assist is not None
                              and widget.drawn.assist["reason"] == "", STARTUP_S)
            assert "DISABLED" in widget.assist_state.text()
            check_torques(panel, muscle)
            widget.confirm = lambda action: True
            answer = panel.press("assist_enable")
            assert not answer.absent and answer.service == "/subject1/assist/enable"
            assert answer.text, answer
            if answer.success:  # the node may refuse (an input went stale on a loaded machine)
                assert panel.pump(lambda: "ENABLED" in widget.assist_state.text()
                                  or "FAULT" in widget.assist_state.text(), 60)
            answer = panel.press("assist_disable")
            assert answer.success, answer.text
            assert panel.pump(lambda: "DISABLED" in widget.assist_state.text(), 60)
            assert states and states[-1][1].state == "disabled"
            answer = panel.press("assist_stop")  # latched: only reset leaves it
            assert answer.success and answer.service == "/subject1/assist/stop", answer.text
            assert panel.pump(lambda: "STOPPED" in widget.assist_state.text(), 60)
            assert not panel.press("assist_enable").success
            answer = panel.press("assist_reset")
            assert answer.success and not answer.absent, answer.text
            assert panel.pump(lambda: "DISABLED" in widget.assist_state.text(), 60)
        finally:
            panel.close()
            graph.stop()


def check_torques(panel, muscle) -> None:
    """Both torques of the default DoFs (the Wu model's last four: the arm's) are drawn, the
    muscle torque solid and equal to the topic's at the same stamp, inverse dynamics dashed."""
    widget = panel.widget
    assert panel.pump(lambda: widget.drawn.torques is not None
                      and len(widget.drawn.torques.muscle.t) > 20
                      and len(widget.drawn.torques.inverse_dynamics.t) > 20, STARTUP_S)
    torques = widget.drawn.torques
    assert torques.dofs[-1] == "ulna_elbow_flexion_RotZ" and len(torques.dofs) == 4
    assert widget.torque_plot.widget.isVisible()
    for k in range(4):
        assert np.array_equal(widget.torque_plot.curve_values(k), torques.muscle.values[:, k])
        assert np.array_equal(widget.torque_plot.curve_values(k, overlay=True),
                              torques.inverse_dynamics.values[:, k])
    by_stamp = {round(time_to_seconds(m.header.stamp) * 1e6): m for _, m in list(muscle)}
    matched = 0
    for row, stamp in enumerate(torques.muscle.t):
        msg = by_stamp.get(round(float(stamp) * 1e6))
        if msg is not None:
            columns = [list(msg.name).index(d) for d in torques.dofs]
            assert np.allclose(torques.muscle.values[row], np.asarray(msg.effort)[columns],
                               rtol=1e-12, atol=0)
            matched += 1
    assert matched >= len(torques.muscle.t) // 2, (matched, len(torques.muscle.t))


@pytest.fixture(scope="module")
def demo(app, tmp_path_factory):
    """The demo graph (MVC given, MCAP recorder on) with a probe and the panel."""
    records = tmp_path_factory.mktemp("records")
    with RosProbe("panel_test_probe") as probe:
        received = {"envelope": probe.subscribe(SignalChunk, "/emg/envelope", output_qos(1000)),
                    "joints": probe.subscribe(JointState, "/ik/joint_states", output_qos(1000))}
        mvc = "[" + ",".join(repr(v) for v in DEMO_MVC) + "]"
        graph = GraphProcess("demo", "--set", "bridge.port=0", "--set", "live_view.port=0",
                            "--set", f"emg_processing.mvc={mvc}", "--record-directory",
                            str(records), "--record", "false", "--record-mcap", "true")
        panel = Panel(app)
        try:
            yield panel, received, records, graph
        finally:
            panel.close()
            graph.stop()


def envelope_at(received, index: int):
    for _, msg in reversed(list(received["envelope"])):
        offset = index - msg.first_sample_index
        if 0 <= offset < msg.sample_count:
            channels = len(msg.channel_names)
            return np.asarray(msg.data[offset * channels:(offset + 1) * channels])
    return None


def newest_index(received) -> int:
    """The sample index after the probe's newest envelope message."""
    newest = received["envelope"][-1][1]
    return newest.first_sample_index + newest.sample_count


def newest_stamp(received) -> float:
    """The stamp of the probe's newest joint state (-inf before the first)."""
    joints = list(received["joints"])
    return time_to_seconds(joints[-1][1].header.stamp) if joints else float("-inf")


def joints_at(received, stamp: float):
    for _, msg in reversed(list(received["joints"])):
        if abs(time_to_seconds(msg.header.stamp) - stamp) < 1e-6:
            return list(msg.name), np.asarray(msg.position)
    return None


def test_curves_hold_the_topics_values(demo):
    panel, received, _, graph = demo
    widget = panel.widget

    def drawn_enough():
        snap = getattr(widget, "drawn", None)
        return (snap is not None and len(snap.envelope.t) > 60 and len(snap.joints.t) > 60
                and snap.mvc_percent is not None and len(snap.diagnostics) >= 3)

    assert panel.pump(drawn_enough, STARTUP_S), graph.output()[-3000:]
    # The probe is another participant: on a loaded machine it may discover the graph after
    # the panel did (missing the first messages) or lag behind it. It is waited for until it
    # got past what is drawn now; the points compared below are those drawn within what it
    # received (no event is processed between the snapshot and the curves' check).
    shown = widget.drawn
    assert panel.pump(lambda: received["envelope"] and received["joints"]
                      and newest_index(received) > shown.envelope.index[-1]
                      and newest_stamp(received) >= shown.joints.t[-1], 60)
    assert widget.namespace == "/" and "/" in panel.adapter.namespaces()
    snap = widget.drawn
    envelope = snap.envelope
    assert envelope.names == [f"EMG{k}" for k in range(1, 11)] and envelope.unit == "% MVC"
    # Each curve holds exactly what was drawn, and that is the topic's value (x 100: % MVC)
    # at the drawn sample index, for every point the probe received too.
    matched = 0
    for k in range(len(envelope.names)):
        assert np.array_equal(widget.envelope_plot.curve_values(k), envelope.values[:, k])
    first, end = received["envelope"][0][1].first_sample_index, newest_index(received)
    compared = [(row, int(index)) for row, index in enumerate(envelope.index)
                if first <= index < end]
    assert len(compared) >= 10, (first, envelope.index)
    for row, index in compared:
        value = envelope_at(received, index)
        if value is not None:
            assert np.allclose(envelope.values[row], value * 100.0, rtol=1e-12, atol=0)
            matched += 1
    assert matched >= len(compared) // 2, (matched, len(compared))
    newest = envelope_at(received, int(envelope.index[-1]))
    if newest is not None:
        assert np.allclose(widget.bars.heights, newest * 100.0, rtol=1e-12, atol=0)
    # Joint angles: the JointState of the same stamp, rotations in degrees.
    joints = snap.joints
    assert "ulna_elbow_flexion_RotZ" in joints.names
    elbow = joints.names.index("ulna_elbow_flexion_RotZ")
    scapula = next(k for k, n in enumerate(joints.names) if n.endswith("transform_RotX"))
    matched = 0
    first, end = time_to_seconds(received["joints"][0][1].header.stamp), newest_stamp(received)
    compared = [(row, float(stamp)) for row, stamp in enumerate(joints.t)
                if first <= stamp <= end]
    assert len(compared) >= 10, (first, joints.t)
    for row, stamp in compared:
        found = joints_at(received, stamp)
        if found is not None:
            names, positions = found
            assert names == joints.names
            assert joints.values[row, elbow] == pytest.approx(np.degrees(positions[elbow]))
            assert joints.values[row, scapula] == pytest.approx(np.degrees(positions[scapula]))
            matched += 1
    assert matched >= len(compared) // 2, (matched, len(compared))
    assert np.array_equal(widget.joint_plot.curve_values(elbow), joints.values[:, elbow])
    # Streams table: this namespace's nodes from /diagnostics.
    table = widget.streams
    nodes = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert {"emg_processing", "ik", "bridge"} <= nodes, nodes
    # The refresh keeps drawing.
    before = widget.drawn.version
    assert panel.pump(lambda: widget.drawn.version > before, 30)


def test_buttons_call_their_services_and_show_the_answers(demo):
    panel, _, records, _ = demo
    assert panel.pump(lambda: "/bridge/start_recording" in panel.adapter.services(), STARTUP_S)
    panel.widget.record_path.setText("panel_test.bio")
    answer = panel.press("bridge_start")
    assert answer.success, answer.text
    assert "recording to" in answer.text and "panel_test" in answer.text
    answer = panel.press("bridge_stop")
    assert answer.success and "panel_test" in answer.text, answer.text
    assert list(records.glob("panel_test*.bio"))
    panel.widget.record_path.setText("")
    # MCAP: recording since the start (--record-mcap true): stop, start, stop.
    answer = panel.press("mcap_stop")
    assert answer.success, answer.text
    answer = panel.press("mcap_start")
    assert answer.success and ".mcap" in answer.text, answer.text
    answer = panel.press("mcap_stop")
    assert answer.success, answer.text
    # MVC calibration over one second of signal: the answer lists every channel's MVC.
    panel.widget.mvc_duration.setValue(1.0)
    answer = panel.press("calibrate")
    assert answer.success, answer.text
    assert "EMG1 " in answer.text and "EMG10 " in answer.text
    # The demo has no assist node: a clear message within the wait for the service.
    panel.widget.confirm = lambda action: True
    start = time.monotonic()
    answer = panel.press("assist_enable")
    assert answer.absent and not answer.success
    assert "no /assist/enable service" in answer.text
    assert time.monotonic() - start < 60  # never a hang (the wait is 3 s; generous bound)
    # Refusing the confirmation calls nothing.
    panel.widget.confirm = lambda action: False
    panel.widget.buttons["assist_enable"].click()
    panel.app.processEvents()
    assert "cancelled" in panel.widget.answer_labels["Assist"].text()
    assert panel.widget.buttons["assist_enable"].isEnabled()
