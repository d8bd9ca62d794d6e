"""On-demand checker: what ik_node publishes, as a default-QoS consumer receives it.

    tools/run graph exo_demo &                                # any graph with ik_node
    tools/run bench ik_continuity --minutes 10 [--namespace s1] [--max-pose-step 0.1]
    tools/run bench ik_continuity --minutes 10 --graph exo_demo   # starts it (own ROS domain)

Subscribes to ik/quality first, then ik/joint_states (reliable, keep last 10: ROS 2's default
QoS), pairs them by stamp and prints, once a minute and at the end: poses, steps judged, steps
beyond max_pose_step / max_translation_step and how many were not flagged `discontinuity` on
their frame's quality, the largest rotational step per frame (p50/p99/max), discontinuities by
kind, angles outside the model's ranges, free rotations outside [centre - pi, centre + pi),
joint states received before their quality, and the load average. Give the limits the node
runs with (config/ik_wu.yaml: the defaults). Prints figures; never passes or fails.
"""
import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

from rclpy.qos import QoSProfile  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from biosig_ros.msg import IkQuality  # noqa: E402
from biosig_ros.processing.ik_model import load_model  # noqa: E402
from graph_harness import GraphProcess  # noqa: E402
from ik_audit import IkAudit, quality_of, stamp_key  # noqa: E402
from ros_harness import RosProbe, isolate_ros_graph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--model", default="data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod")
    parser.add_argument("--max-pose-step", type=float, default=0.1)
    parser.add_argument("--max-translation-step", type=float, default=0.02)
    parser.add_argument("--graph", default="", help="start this graph (e.g. exo_demo) in a "
                        "ROS domain of its own for the run, and stop it after")
    args = parser.parse_args()
    graph = None
    if args.graph:
        isolate_ros_graph()
        graph = GraphProcess(args.graph)
        if not graph.wait_for(r"\[ik\] .*tracking started", timeout=180):
            graph.stop()
            sys.exit(f"ik did not start tracking:\n{graph.output()[-3000:]}")
    audit = IkAudit(load_model(args.model), args.max_pose_step, args.max_translation_step)
    lock = threading.Lock()
    prefix = "/" + args.namespace.strip("/") if args.namespace.strip("/") else ""

    def locked(function, *values):
        with lock:
            function(*values)

    with RosProbe("ik_continuity_check") as probe:
        default = QoSProfile(depth=10)  # what `create_subscription(..., 10)` gives
        probe.node.create_subscription(
            IkQuality, f"{prefix}/ik/quality",
            lambda m: locked(audit.on_quality, stamp_key(m.header.stamp), quality_of(m)),
            default)
        probe.node.create_subscription(
            JointState, f"{prefix}/ik/joint_states",
            lambda m: locked(audit.on_pose, stamp_key(m.header.stamp), m.name, m.position),
            default)
        start = time.monotonic()
        end = start + args.minutes * 60
        print(f"checking {prefix}/ik/joint_states and {prefix}/ik/quality for "
              f"{args.minutes:g} min", flush=True)
        while time.monotonic() < end:
            time.sleep(min(60.0, max(0.0, end - time.monotonic())))
            with lock:
                line = audit.summary()
            print(f"[{(time.monotonic() - start) / 60:.1f} min] {line}", flush=True)
    if graph is not None:
        graph.stop()
        log = graph.output()
        print(f"graph log: {log.count('re-initialised at frame')} re-initialisations logged by "
              f"ik, {log.count('[ik]')} ik lines; assist faults logged: "
              f"{log.count('FAULT:')}")
    with lock:
        problems = audit.problems()
        print("unflagged steps (frame, DoF, step):", audit.unflagged[:20])
    print("problems:", "; ".join(problems) if problems else "none")
    print("load average (1, 5, 15 min): %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
