"""assist_node: the latency it adds over a bare relay, and the whole exo_demo chain from a marker
frame's capture stamp to the command. Prints figures; passes or fails nothing.

    tools/run bench assist [--seconds 6] [--rounds 3] [--chain-seconds 20] [--realtime-priority N]
                           [--skip-added] [--skip-chain] [--skip-crash]

1. Added latency: a probe (this process) publishes a 3-channel envelope (one sample per chunk)
   and joint states of the Wu model, each at 100 Hz, 5 ms apart, and times every command on
   exo/commands from the input that triggered it (the last one sent before it: commands come
   back within a few ms). Targets, alternately, in their own processes started by
   node_runner.main_for: a relay (one Float64MultiArray per input, same QoS) and assist_node
   (enabled, the law plus gravity support from biorbd inverse dynamics, its watchdog timer at
   10 Hz so that every command answers an input).
2. Chain: `python -m biosig_ros.graph exo_demo`, assist enabled (again after each fault: the
   replay's loop makes the pose jump). For every command triggered by a joint state, the delay
   from that frame's capture stamp (the replayed marker frame's, carried by IK) to the
   command's arrival here. Commands are paired with the AssistState published right after
   each of them. Where the time goes: the arrival here of the same frame's markers, joint
   state and IK quality (matched by stamp) split it into hops. For commands triggered by an
   envelope: the age of the envelope's newest sample when the command arrives (what
   max_input_age must allow).
3. Crash: exo_demo again, assist enabled and commanding; its process killed with SIGKILL; the
   graph's supervisor starts it again (as launch's respawn would). What the controller
   receives: the last command before the kill, how long the topic stays silent, the first
   command of the new process and its step from the held value, the ramp to 0 and its
   largest step, and the state the new process reports.
"""
from __future__ import annotations

import argparse
import bisect
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))
from ros_harness import benchmark_environment, print_load  # noqa: E402

benchmark_environment()

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
POSE = [0.52, 0.69, 1.07, 3.0, -1.5, 1.5, -0.2, 0.1, 0.0, 0.1, 0.17, 0.5, 1.0, -1.2, 0.8]
ASSIST = dict(joints=["elbow"], agonists=["BIC"], antagonists=["TRI"], gains=[4.0],
              deadbands=[0.05], torque_limits=[5.0], rate_limits=[50.0], mvc_channels=[],
              mvc=[], support_fraction=0.5, gravity_dofs=["ulna_elbow_flexion_RotZ"],
              model_path=WU, watch_dofs=[], rate=10.0, envelope_timeout=0.5, pose_timeout=0.5)


def serve_relay() -> None:
    """The baseline: every envelope or joint state answered by one command, nothing computed."""
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from biosig_ros.msg import SignalChunk
    from biosig_ros.ros.node_runner import main_for
    from biosig_ros.ros.qos import input_qos, output_qos

    class Relay(Node):
        def __init__(self):
            super().__init__("relay")
            publisher = self.create_publisher(Float64MultiArray, "exo/commands", output_qos())
            command = Float64MultiArray(data=[0.0])
            self.create_subscription(SignalChunk, "emg/envelope",
                                     lambda _: publisher.publish(command), input_qos())
            self.create_subscription(JointState, "ik/joint_states",
                                     lambda _: publisher.publish(command), input_qos())
            self.get_logger().info("ready: emg/envelope, ik/joint_states -> exo/commands")

    main_for(Relay, "relay")



class Feeder:
    """Envelope and joint states at 100 Hz each, interleaved; remembers what it sent when."""

    def __init__(self, probe):
        from sensor_msgs.msg import JointState

        from biosig_ros.msg import IkQuality, SignalChunk
        from biosig_ros.processing.ik_model import load_model
        from biosig_ros.ros.qos import output_qos

        # Reliable, like the package's nodes: assist_node subscribes reliable only.
        self.envelope = probe.publisher(SignalChunk, "/emg/envelope", output_qos())
        self.pose = probe.publisher(JointState, "/ik/joint_states", output_qos())
        self.quality = probe.publisher(IkQuality, "/ik/quality", output_qos())
        self._quality_type = IkQuality
        self.names = list(load_model(REPO / WU).dof_names)
        self.sent: list[tuple[float, str]] = []
        self.index = 0
        self._make = (SignalChunk, JointState)

    def run(self, seconds: float) -> None:
        chunk_type, joints_type = self._make
        period = 0.01
        next_time = time.perf_counter()
        end = next_time + seconds
        k = 0
        while next_time < end:
            stamp = time.time()
            if k % 2 == 0:
                msg = chunk_type(channel_names=["BIC", "TRI", "X"], unit="", sample_rate=100.0,
                                 first_sample_index=self.index, sample_count=1,
                                 data=[0.4 + 0.2 * np.sin(self.index / 20), 0.1, 0.0])
                self.index += 1
                kind, publisher = "envelope", self.envelope
            else:
                msg = joints_type(name=self.names, position=POSE)
                kind, publisher = "joint_states", self.pose
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
            next_time += period / 2
            delay = next_time - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if kind == "joint_states":  # its quality first, as IK publishes it
                self.quality.publish(self._quality_type(header=msg.header, frame_number=k))
            self.sent.append((time.perf_counter(), kind))
            publisher.publish(msg)
            k += 1


def attribute(sent: list, arrivals: list, since: float) -> dict[str, list[float]]:
    """Each arrival's delay from the last input sent before it, by the input's kind."""
    times = [t for t, _ in sent]
    delays: dict[str, list[float]] = {"envelope": [], "joint_states": []}
    for arrival in arrivals:
        k = bisect.bisect_right(times, arrival) - 1
        if k >= 0 and times[k] >= since:
            delays[sent[k][1]].append(arrival - times[k])
    return delays


def added_latency(seconds: float, rounds: int) -> None:
    from ros_harness import NodeProcess, RosProbe, process_cpu_seconds
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import SetBool

    print(f"\nAdded latency: envelope and joint states at 100 Hz each, {rounds} x {seconds:g} s "
          "per target, alternating; input published -> command received")
    targets = {"relay": ("benchmarks.assist", ["--serve-relay"], None),
               "assist_node": ("biosig_ros.nodes.assist_node", [], ASSIST)}
    results = {label: {"envelope": [], "joint_states": []} for label in targets}
    cpu = {label: [0.0, 0.0] for label in targets}
    with RosProbe("assist_latency_probe") as probe:
        arrivals: list[float] = []
        lock = threading.Lock()

        def on_command(_msg):
            now = time.perf_counter()
            with lock:
                arrivals.append(now)

        from biosig_ros.ros.qos import input_qos
        probe.node.create_subscription(Float64MultiArray, "/exo/commands", on_command,
                                       input_qos(1000))
        feeder = Feeder(probe)
        for _ in range(rounds):
            for label, (module, arguments, params) in targets.items():
                name = "relay" if label == "relay" else "assist"
                with NodeProcess(module, name, params, arguments) as node:
                    if not (node.wait_for_output("ready", 60) and probe.wait_for_subscribers(
                            feeder.envelope) and probe.wait_for_subscribers(feeder.pose)):
                        print(f"  {label}: did not start\n{node.output()}")
                        continue
                    feeder.run(1.0)  # discovery settles; assist needs fresh inputs to enable
                    if label == "assist_node":
                        enable = threading.Thread(target=lambda: print_refusal(probe.call(
                            SetBool, "/assist/enable", SetBool.Request(data=True))))
                        enable.start()
                        feeder.run(0.5)
                        enable.join()
                    start = time.perf_counter()
                    before = process_cpu_seconds(node.process.pid)
                    feeder.run(seconds)
                    cpu[label][0] += process_cpu_seconds(node.process.pid) - before
                    cpu[label][1] += seconds
                    time.sleep(0.3)
                    with lock:
                        delays = attribute(feeder.sent, [a for a in arrivals if a >= start],
                                           start)
                    for kind, values in delays.items():
                        results[label][kind] += values
    print(f"  {'':28s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} "
          f"{'commands':>9s} {'CPU %':>6s}")
    for label, kinds in results.items():
        share = 100 * cpu[label][0] / cpu[label][1] if cpu[label][1] else float("nan")
        for kind, values in kinds.items():
            if values:
                v = np.array(values) * 1e3
                print(f"  {label + ', ' + kind:28s} {np.percentile(v, 50):8.3f} "
                      f"{np.percentile(v, 90):8.3f} {np.percentile(v, 99):8.3f} {v.max():8.3f} "
                      f"{len(v):9d} {share:6.1f}")
    for kind in ("envelope", "joint_states"):
        relay, assist = results["relay"][kind], results["assist_node"][kind]
        if relay and assist:
            print(f"  added by assist_node, {kind:12s}: p50 "
                  f"{(np.percentile(assist, 50) - np.percentile(relay, 50)) * 1e3:+.3f} ms, p90 "
                  f"{(np.percentile(assist, 90) - np.percentile(relay, 90)) * 1e3:+.3f} ms "
                  "(goal: under 0.3 ms at p50)")


def print_refusal(response) -> None:
    if not response.success:
        print(f"  assist_node refused to enable: {response.message}")


def chain_latency(seconds: float, realtime_priority: int = 0) -> None:
    from ros_harness import RosProbe
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import SetBool
    from test_graph import start_graph

    from biosig_ros.msg import AssistState
    from biosig_ros.ros.conversions import time_to_seconds

    print(f"\nChain: exo_demo graph for {seconds:g} s; marker frame capture stamp -> command "
          "received (commands triggered by a joint state)"
          + (f"; replay, emg_processing, ik and assist at real-time priority "
             f"{realtime_priority}"
             if realtime_priority else "; normal scheduling"))
    from sensor_msgs.msg import JointState

    from biosig_ros.msg import IkQuality, MarkerSet
    with RosProbe("assist_chain_probe") as probe:
        commands = subscribe_timed(probe, Float64MultiArray, "/exo/commands")
        states = subscribe_timed(probe, AssistState, "/assist/state")
        hops = {"markers": subscribe_timed(probe, MarkerSet, "/markers"),
                "joint state": subscribe_timed(probe, JointState, "/ik/joint_states"),
                "quality": subscribe_timed(probe, IkQuality, "/ik/quality")}
        graph = start_graph("exo_demo", *(["--realtime-priority", str(realtime_priority)]
                                          if realtime_priority else []))
        enables = 0
        try:
            if not probe.wait_until(lambda: states and states[-1][1].reason == "", timeout=120):
                print("  exo_demo did not become ready")
                return
            commands.clear()
            states.clear()
            for received in hops.values():
                received.clear()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if states and states[-1][1].state != "enabled":
                    enables += probe.call(SetBool, "/assist/enable",
                                          SetBool.Request(data=True)).success
                time.sleep(0.2)
        finally:
            graph.send_signal(signal.SIGINT)
            graph.communicate(timeout=60)
    print(f"  {enables} enable calls (after faults: the replay's loop makes the pose jump)")
    received = {"commands": list(commands), "states": list(states),
                **{name: list(values) for name, values in hops.items()}}
    if received["commands"] and len(received["commands"][0]) == 3:
        print("\n  Arrival = when this probe's DDS reader received the message (rmw "
              "received_timestamp: what a C++ controller's executor would start from):")
        chain_report({name: [(m_time, msg) for _, msg, m_time in values]
                      for name, values in received.items()}, time_to_seconds)
    print("\n  Arrival = when this probe's Python callback ran (adds the probe's own executor):")
    chain_report({name: [(c_time, msg) for c_time, msg, *_ in values]
                  for name, values in received.items()}, time_to_seconds)


def subscribe_timed(probe, msg_type, topic: str) -> list:
    """Every message on topic as (callback time, message, middleware receive time), all
    time.time() seconds; (callback time, message) where rclpy passes no MessageInfo (Humble)."""
    received: list = []

    def on_message(msg, info):
        now = time.time()
        if info is None:
            received.append((now, msg))
        else:
            received.append((now, msg, info["received_timestamp"] * 1e-9))

    from biosig_ros.ros.qos import sensor_qos
    try:
        from rclpy.subscription import MessageInfo  # noqa: F401 - Iron and later
        probe.node.create_subscription(msg_type, topic, on_message, sensor_qos(1000))
    except ImportError:
        probe.node.create_subscription(msg_type, topic, lambda m: on_message(m, None),
                                       sensor_qos(1000))
    return received


def chain_report(received: dict, time_to_seconds) -> None:
    """Capture stamp -> command, and the hops, from (arrival, message) lists."""
    commands, states = received["commands"], received["states"]
    hops = {name: received[name] for name in ("markers", "joint state", "quality")}
    offset = best_offset(commands, states)
    arrived = {name: {time_to_seconds(m.header.stamp): t for t, m in values}
               for name, values in hops.items()}
    delays, enabled, state_delays, envelope_ages = [], 0, [], []
    split: dict[str, list[float]] = {name: [] for name in hops}
    for j, (arrival, state) in enumerate(states):
        i = j - offset
        if not 0 <= i < len(commands):
            continue
        stamp = time_to_seconds(state.header.stamp)
        if state.trigger == "envelope":
            envelope_ages.append(commands[i][0] - stamp)
        if state.trigger != "joint_states":
            continue
        delays.append(commands[i][0] - stamp)
        state_delays.append(arrival - stamp)
        enabled += state.state == "enabled"
        for name in hops:
            if stamp in arrived[name]:
                split[name].append(arrived[name][stamp] - stamp)
    if not delays:
        print("  no command triggered by a joint state was received")
        return
    v = np.array(delays) * 1e3
    print(f"  {len(v)} commands ({enabled} while enabled), pairing "
          f"offset {offset}: p50 {np.percentile(v, 50):.2f} ms, p90 {np.percentile(v, 90):.2f} "
          f"ms, p99 {np.percentile(v, 99):.2f} ms, max {v.max():.2f} ms")
    s = np.array(state_delays) * 1e3
    print(f"  (to the AssistState published after each command: p50 {np.percentile(s, 50):.2f} "
          f"ms, p99 {np.percentile(s, 99):.2f} ms)")
    print("  where the time goes, capture stamp -> arrival here of the same frame's:")
    for name, values in list(split.items()) + [("command", delays)]:
        if values:
            h = np.array(values) * 1e3
            print(f"    {name:12s} p50 {np.percentile(h, 50):7.2f} ms, p90 "
                  f"{np.percentile(h, 90):7.2f} ms, p99 {np.percentile(h, 99):7.2f} ms "
                  f"({len(h)} frames)")
    print("  per hop, from the previous stage's arrival here of the same frame:")
    for name, before, after in (("IK", "markers", "joint state"),
                                ("quality -> pose", "quality", "joint state"),
                                ("assist", "joint state", None)):
        gaps = [(commands[j - offset][0] if after is None else arrived[after][stamp])
                - arrived[before][stamp]
                for j, (_, state) in enumerate(states) if state.trigger == "joint_states"
                and 0 <= j - offset < len(commands)
                for stamp in [time_to_seconds(state.header.stamp)]
                if stamp in arrived[before] and (after is None or stamp in arrived[after])]
        if gaps:
            g = np.array(gaps) * 1e3
            print(f"    {name:16s} p50 {np.percentile(g, 50):7.2f} ms, p90 "
                  f"{np.percentile(g, 90):7.2f} ms, p99 {np.percentile(g, 99):7.2f} ms, max "
                  f"{g.max():7.2f} ms ({len(g)} frames)")
    if envelope_ages:
        e = np.array(envelope_ages) * 1e3
        print(f"  commands triggered by an envelope ({len(e)}): first sample's stamp -> command "
              f"p50 {np.percentile(e, 50):.2f} ms, p99 {np.percentile(e, 99):.2f} ms, max "
              f"{e.max():.2f} ms")


def crash(rate_limit: float = 20.0, period: float = 0.01) -> None:
    from ros_harness import RosProbe
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import SetBool
    from test_graph import child_pids, start_graph

    from biosig_ros.msg import AssistState

    from biosig_ros.ros.qos import output_qos

    print("\nCrash: exo_demo, assist killed with SIGKILL while commanding, restarted by the "
          "graph's supervisor")
    with RosProbe("assist_crash_probe") as probe:
        # Reliable, like a forward command controller: nothing it is sent goes unseen.
        commands = probe.subscribe(Float64MultiArray, "/exo/commands", output_qos(1000))
        states = probe.subscribe(AssistState, "/assist/state")
        graph = start_graph("exo_demo")
        try:
            if not probe.wait_until(lambda: states and states[-1][1].reason == "", timeout=120):
                print("  exo_demo did not become ready")
                return

            def commanding():
                if states[-1][1].state != "enabled":
                    probe.call(SetBool, "/assist/enable", SetBool.Request(data=True))
                return states[-1][1].state == "enabled" and abs(commands[-1][1].data[0]) > 0.5
            if not probe.wait_until(commanding, timeout=120, interval=0.1):
                print("  assist never commanded more than 0.5 N.m")
                return
            assist = [pid for pid in child_pids(graph.pid)
                      if b"assist_node" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            killed = time.time()  # the probe stamps arrivals with time.time()
            os.kill(assist[0], signal.SIGKILL)
            probe.wait_until(lambda: commands[-1][0] > killed + 0.1 and not any(
                commands[-1][1].data), timeout=60)
            time.sleep(1.0)
        finally:
            graph.send_signal(signal.SIGINT)
            output = graph.communicate(timeout=60)[0]
    for line in output.splitlines():
        if "left the command" in line or "[graph]" in line and "assist" in line:
            print(f"  | {line.strip()[:160]}")
    received = list(commands)
    before = [(t, c.data[0]) for t, c in received if t < killed]
    after = [(t, c.data[0]) for t, c in received if t > killed]
    if not before or not after:
        print("  no command before or after the kill")
        return
    held_time, held = before[-1]
    values = [held] + [v for _, v in after]
    steps = np.abs(np.diff(values))
    zero = next((t for t, v in after if v == 0.0), None)
    later = [m for t, m in list(states) if t > killed]
    print(f"  command at the kill: {held:+.3f} N.m (the controller holds it); topic silent for "
          f"{(after[0][0] - held_time) * 1e3:.0f} ms (supervisor's restart delay 2 s + start-up)")
    ramp = (f"at 0 {(zero - after[0][0]) * 1e3:.0f} ms after the first command" if zero
            else "never reached 0")
    print(f"  first command of the new process: {after[0][1]:+.3f} N.m, step "
          f"{abs(after[0][1] - held):.3f} N.m (rate limit x period: "
          f"{rate_limit * period:.3f}); largest step of the ramp {steps.max():.3f} N.m; {ramp}")
    print(f"  states of the new process: {sorted({m.state for m in later})} (never enabled "
          "without an enable call: none was made)")


def best_offset(commands: list, states: list) -> int:
    """The shift pairing the k-th command with its AssistState (equal values; both topics lose
    nothing on loopback, but the first messages of each may be missed while discovery
    settles)."""
    def matches(offset):
        pairs = [(c, states[k + offset][1]) for k, (_, c) in enumerate(commands)
                 if 0 <= k + offset < len(states)]
        return sum(list(c.data) == list(s.command) and any(c.data) for c, s in pairs)
    return max(range(-20, 21), key=matches)


def main() -> None:
    if "--serve-relay" in sys.argv:
        serve_relay()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chain-seconds", type=float, default=20.0)
    parser.add_argument("--realtime-priority", type=int, default=0, metavar="N",
                        help="also run the chain with its nodes at SCHED_FIFO N")
    parser.add_argument("--skip-added", action="store_true")
    parser.add_argument("--skip-chain", action="store_true")
    parser.add_argument("--skip-crash", action="store_true")
    args = parser.parse_args()
    print_load()
    if not args.skip_added:
        added_latency(args.seconds, args.rounds)
    if not args.skip_chain:
        chain_latency(args.chain_seconds)
        if args.realtime_priority:
            chain_latency(args.chain_seconds, args.realtime_priority)
    if not args.skip_crash:
        crash()
    print_load(at_end=True)


if __name__ == "__main__":
    main()
