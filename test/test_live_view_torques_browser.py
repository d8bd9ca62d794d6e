"""The live view's joint torques in a real browser (headless Chromium), across processes: the
exo_demo graph (replay -> EMG processing -> IK -> torque_node ...) in namespace s1 and a
live_view node in the same namespace (relative topic names, its default QoS against
torque_node's publishers). The page draws both torques of the chosen DoFs with finite values,
the values torque/muscle and torque/inverse_dynamics carried at those stamps; a live view with
no torque node says so; one given no DoF shows no torque chart.
"""
import math
import re
import signal

import pytest
from sensor_msgs.msg import JointState

from biosig_ros.ros.conversions import time_to_seconds
from biosig_ros.ros.qos import output_qos

from browser import module_fixtures
from ros_harness import NodeProcess, RosProbe, shipped_parameters
from test_graph import start_graph

pytestmark = pytest.mark.integration  # node processes, DDS and a browser (test/tiers.py)

NAMESPACE = "s1"
DOFS = ["ulna_elbow_flexion_RotZ", "humerus_shoulder_ele_RotY"]
STREAMS = {"torque_muscle": f"/{NAMESPACE}/torque/muscle",
           "torque_inverse_dynamics": f"/{NAMESPACE}/torque/inverse_dynamics"}
MODULE = "biosig_ros.nodes.live_view_node"


def start_live_view(name: str, namespace: str, **params) -> NodeProcess:
    """A live_view node (lightened: no skeleton, no viewer messages), starting."""
    return NodeProcess(MODULE, name, shipped_parameters(
        "live_view.yaml", port=0, model_path="", raw_topic="", viz_markers_topic="",
        envelope_channels_topic="", **params), namespace=f"/{namespace}")


def page_address(node: NodeProcess) -> str:
    """The page's address, once the node is ready."""
    assert node.wait_for_output("ready:", 90), node.output()
    return re.search(r"http://127\.0\.0\.1:\d+/", node.output()).group(0)


def live_view(name: str, namespace: str, **params) -> tuple[NodeProcess, str]:
    """A live_view node, ready, and its page's address."""
    node = start_live_view(name, namespace, **params)
    return node, page_address(node)


class ExoDemo:
    """exo_demo in namespace s1, a probe on its torque topics and a live view beside it."""

    def __init__(self, _directory):  # (module_fixtures gives each graph a directory)
        # The views in a namespace without torque node, for the second test, start first: each
        # takes seconds beside the running graph, a fraction of one before it.
        self.silent = start_live_view("live_view_silent", "nobody", torque_dofs=DOFS)
        self.hidden = start_live_view("live_view_hidden", "nobody", torque_dofs=[])
        self.probe = RosProbe("torque_browser_probe")
        # reliable, as the graph publishes: a probe slowed by a loaded machine loses nothing
        self.received = {stream: self.probe.subscribe(JointState, topic, output_qos(1000))
                         for stream, topic in STREAMS.items()}
        self.graph = start_graph("exo_demo", "--namespace", NAMESPACE)
        self.view, self.url = live_view("live_view", NAMESPACE, torque_dofs=DOFS)

    def effort(self, stream: str, stamp: float, dof: str):
        """The effort of `dof` in the message of `stream` stamped `stamp` (None: not got)."""
        for _, msg in reversed(list(self.received[stream])):
            if abs(time_to_seconds(msg.header.stamp) - stamp) < 1e-6:
                return msg.effort[list(msg.name).index(dof)]
        return None

    def newest_stamp(self, stream: str) -> float:
        messages = self.received[stream]
        return time_to_seconds(messages[-1][1].header.stamp) if messages else 0.0

    def output(self) -> str:
        return self.view.output()[-3000:]

    def stop(self):
        for view in (self.view, self.silent, self.hidden):
            view.stop()
        if self.graph.poll() is None:
            self.graph.send_signal(signal.SIGINT)
            try:
                self.graph.communicate(timeout=60)
            except Exception:  # noqa: BLE001 - a graph that will not stop is killed
                self.graph.kill()
                self.graph.communicate()
        self.probe.close()


demo, browser = module_fixtures(ExoDemo, width=1400, height=1400)


def drawn(page) -> dict:
    """What the page drew at its next screen refresh (see test_live_view_browser.drawn)."""
    return page.evaluate(
        "new Promise(resolve => requestAnimationFrame(() => resolve(JSON.parse(JSON.stringify("
        "{charts: __liveView.charts, torques: __liveView.torques, errors: __liveView.errors, "
        "shown: getComputedStyle(document.getElementById('torques-panel')).display})))))")


def test_both_torques_of_the_chosen_dofs_are_drawn_with_the_topics_values(demo, browser):
    page = browser.open(demo.url)
    keys = [f"{stream}/{dof}" for stream in STREAMS for dof in DOFS]
    ready = " && ".join(f"__liveView.charts['{key}'] && __liveView.charts['{key}'].points > 20"
                        for key in keys)
    assert page.wait_for(f"window.__liveView && {ready}", 180), (
        page.evaluate("JSON.stringify(window.__liveView && __liveView.torques)"), demo.output())
    matched = dict.fromkeys(keys, 0)
    for _ in range(6):
        # both topics publishing (one starved past 2 s by a loaded machine is said to have
        # stopped, its charts gone until it comes back: waited for, not a failure here)
        flowing = f"{ready} && !__liveView.torques.note.includes('not publishing')"
        assert page.wait_for(flowing, 60), page.evaluate("JSON.stringify(__liveView.torques)")
        shown = drawn(page)
        assert shown["shown"] != "none" and shown["torques"]["dofs"] == DOFS
        for stream in STREAMS:
            for dof in DOFS:
                chart = shown["charts"][f"{stream}/{dof}"]
                assert chart["unit"] == "N.m"
                assert chart["value"] is not None and math.isfinite(chart["value"]), chart
                # the probe may lag the page on a loaded machine: wait until it got that stamp
                assert demo.probe.wait_until(
                    lambda s=stream, t=chart["t"]: demo.newest_stamp(s) >= t, 60), chart
                effort = demo.effort(stream, chart["t"], dof)
                if effort is None:
                    continue  # a message the probe lost
                assert chart["value"] == effort  # float64 through JSON, exactly
                matched[f"{stream}/{dof}"] += 1
        page.wait_for(f"(__liveView.charts['{keys[0]}']?.t ?? 0) > "
                      f"{shown['charts'][keys[0]]['t']}", 30)
    assert all(count >= 3 for count in matched.values()), matched
    assert shown["torques"]["drawn"] > 4 * 20 and shown["errors"] == 0
    page.close()


def test_a_view_without_torque_node_says_so_and_one_without_dofs_shows_no_chart(demo, browser):
    silent, hidden = demo.silent, demo.hidden  # started with the graph, in namespace nobody
    silent_url, hidden_url = page_address(silent), page_address(hidden)
    page = browser.open(silent_url)
    assert page.wait_for("window.__liveView && __liveView.frames > 3 && "
                         "__liveView.torques && __liveView.torques.note", 60), silent.output()
    shown = drawn(page)
    assert shown["shown"] != "none"
    assert shown["torques"]["note"].startswith("no torque topic is publishing: "
                                               "/nobody/torque/muscle, "
                                               "/nobody/torque/inverse_dynamics")
    assert shown["torques"]["drawn"] == 0 and shown["errors"] == 0
    other = browser.open(hidden_url)
    assert other.wait_for("window.__liveView && __liveView.frames > 3", 60), hidden.output()
    shown = drawn(other)
    assert shown["shown"] == "none" and shown["torques"]["dofs"] == []
    assert shown["errors"] == 0
    assert "torque" not in hidden.output().split("ready:")[1].split("\n")[0]
