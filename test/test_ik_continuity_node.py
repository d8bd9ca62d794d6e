"""ik_node fed by the replay of data/abd.bio looping, across processes: the joint states a
consumer receives are continuous (free rotations in [-pi, pi)), within the model's ranges, and
every step beyond max_pose_step is flagged on the same frame's ik/quality, which arrives before
that frame's joint states (both reliable; the quality subscription made first, as a consumer
that pairs them by stamp would)."""
import threading

import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState

from biosig_ros.msg import IkQuality
from biosig_ros.processing.ik_model import load_model

from ik_audit import IkAudit, quality_of, stamp_key
from ros_harness import NodeProcess, RosProbe, shipped_parameters
from test_ik_solver import WU

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)


@pytest.fixture
def probe():
    with RosProbe() as ros_probe:
        yield ros_probe


def test_looping_replay_gives_continuous_flagged_joint_states(probe):
    audit = IkAudit(load_model(WU))
    lock = threading.Lock()
    # Reliable, deep enough that a test process slowed by a loaded machine loses nothing.
    qos = QoSProfile(depth=1000)
    probe.node.create_subscription(
        IkQuality, "/ik/quality",
        lambda m: _locked(lock, audit.on_quality, stamp_key(m.header.stamp), quality_of(m)), qos)
    probe.node.create_subscription(
        JointState, "/ik/joint_states",
        lambda m: _locked(lock, audit.on_pose, stamp_key(m.header.stamp), m.name, m.position),
        qos)
    ik = NodeProcess("biosig_ros.nodes.ik_node", "ik",
                     shipped_parameters("ik_wu.yaml", publish_tf=False))
    # abd.bio lasts 7 s: at twice the speed, a loop restart every 3.5 s
    replay = NodeProcess("biosig_ros.nodes.replay_node", "replay", shipped_parameters(
        "replay_abd.yaml", speed=2.0, loop=True, wait_for_nodes=["ik"]))
    with ik, replay:
        assert ik.wait_for_output("ready:", timeout=60), ik.output()

        def restarts():
            with lock:
                return audit.discontinuities["markers jumped (loop restart)"]

        assert probe.wait_until(lambda: restarts() >= 3, timeout=120), (
            audit.summary(), ik.output()[-3000:], replay.output()[-2000:])
        output = ik.output()
    with lock:
        print(audit.summary())
        assert audit.problems() == [], (audit.summary(), output[-3000:])
        assert audit.steps_judged > 500
        assert audit.quality_after_pose == 0 and audit.without_quality == 0
    assert output.count("re-initialised at frame") >= 3


def _locked(lock, function, *args):
    with lock:
        function(*args)
