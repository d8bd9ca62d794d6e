"""The operator panel's ROS side: topics of one namespace into a PanelModel, services called
for the panel's buttons, namespaces found in the graph. Nothing here runs on the GUI thread.

Threads: an executor spins the panel's node (service replies, a 1 s timer listing the graph's
namespaces and services and which node published each /diagnostics message); the topics are
read in batches by a PolledIntake thread `points_per_second` times a second (one wake-up per
screen refresh instead of one per message, see ros/polled_intake.py), best effort. A button's
call runs on a short-lived thread of its own: waits for the service (bounded), calls it
asynchronously and hands an Answer to the GUI's callback, always within its timeout.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from biosig_ros.msg import AssistState, SignalChunk
from biosig_ros.panel.actions import (CALIBRATE_MVC, SET_FALSE, SET_TRUE, START_RECORDING,
                                      Action, Answer, absent_answer, describe_answer,
                                      service_name)
from biosig_ros.panel.model import PanelModel, namespaces_of
from biosig_ros.ros.conversions import time_to_seconds
from biosig_ros.ros.polled_intake import PolledIntake
from biosig_ros.ros.qos import input_qos
from biosig_ros.srv import CalibrateMvc, StartRecording

SERVICE_TYPES = {START_RECORDING: StartRecording, CALIBRATE_MVC: CalibrateMvc,
                 SET_TRUE: SetBool, SET_FALSE: SetBool}
WAIT_FOR_SERVICE_S = 3.0  # how long a button waits for its service to appear
ANSWER_TIMEOUT_S = 10.0   # and for its answer (the MVC calibration: + its duration)


def _request(action: Action, params: dict):
    service_type = SERVICE_TYPES.get(action.kind, Trigger)
    request = service_type.Request()
    if action.kind == START_RECORDING:
        request.path = str(params.get("path", ""))
    elif action.kind == CALIBRATE_MVC:
        request.duration = float(params.get("duration", 5.0))
        request.output_file = str(params.get("output_file", ""))
    elif action.kind in (SET_TRUE, SET_FALSE):
        request.data = action.kind == SET_TRUE
    return service_type, request


def _type_name(service_type) -> str:
    """'std_srvs/srv/Trigger' from the generated class."""
    return f"{service_type.__module__.split('.')[0]}/srv/{service_type.__name__}"


def _fields(response) -> dict:
    return {name: getattr(response, name) for name in (
        "success", "message", "path", "channel_names", "mvc") if hasattr(response, name)}


def _gid_key(gid) -> bytes:
    """A publisher gid as bytes, from a message info dict or a TopicEndpointInfo."""
    if isinstance(gid, dict):
        gid = gid.get("data", b"")
    return bytes(bytearray(gid))


def _assist_dict(msg: AssistState) -> dict:
    return {"state": msg.state, "reason": msg.reason, "trigger": msg.trigger,
            "stamp": time_to_seconds(msg.header.stamp), "joint_names": list(msg.joint_names),
            "command": list(msg.command), "target": list(msg.target),
            "agonist_activation": list(msg.agonist_activation),
            "antagonist_activation": list(msg.antagonist_activation)}


def _status_dict(status) -> dict:
    level = status.level
    level = int.from_bytes(level, "little") if isinstance(level, bytes) else int(level)
    return {"name": status.name, "level": level, "message": status.message,
            "hardware_id": status.hardware_id,
            "values": {kv.key: kv.value for kv in status.values}}


class PanelAdapter:
    """Feeds `model` from the namespace chosen with set_namespace(); call() for buttons."""

    def __init__(self, model: PanelModel, namespace: str = "", node_name: str = "biosig_ros_panel",
                 context=None):
        self.model = model
        self.node = Node(node_name, context=context, start_parameter_services=False)
        self._lock = threading.Lock()
        self._namespaces: list[str] = []
        self._services: dict[str, list[str]] = {}  # offered by a server
        self._diagnostics_owners: dict[bytes, str] = {}  # publisher gid -> node namespace
        self._nodes: dict[str, set[str]] = {}  # namespace -> node names
        self._subscribed_namespace: str | None = None
        self._wanted_namespace = namespace
        self._clients: dict[str, object] = {}
        self._intake = PolledIntake(self.node, 0, self._on_bad_message)
        self.bad_messages = 0
        self.last_problem = ""
        self._executor = SingleThreadedExecutor(context=self.node.context)
        self._executor.add_node(self.node)
        self.node.create_timer(1.0, self._survey)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._spin, name="panel-executor", daemon=True),
                         threading.Thread(target=self._poll, name="panel-intake", daemon=True)]
        for thread in self._threads:
            thread.start()

    # --- GUI thread: cheap reads and requests --------------------------------------------

    def namespaces(self) -> list[str]:
        with self._lock:
            return list(self._namespaces)

    def services(self) -> set[str]:
        """Names of the services some node of the graph offers (surveyed once a second)."""
        with self._lock:
            return set(self._services)

    def set_namespace(self, namespace: str) -> None:
        """Show `namespace` from the next intake round on (its buffers start empty)."""
        with self._lock:
            self._wanted_namespace = namespace

    def call(self, action: Action, namespace: str, params: dict,
             on_done: Callable[[Answer], None]) -> None:
        """Call the action's service in `namespace` on a thread of its own; on_done(Answer)
        comes from that thread within WAIT_FOR_SERVICE_S + the answer's timeout."""
        threading.Thread(target=self._call, args=(action, namespace, params, on_done),
                         name=f"panel-call-{action.key}", daemon=True).start()

    # --- executor thread -------------------------------------------------------------------

    def _spin(self) -> None:
        while not self._stop.is_set() and self.node.context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.2)
            except Exception as error:  # noqa: BLE001 - e.g. the context shut down under us
                if self._stop.is_set() or not self.node.context.ok():
                    break
                self.last_problem = f"executor: {error}"

    def _survey(self) -> None:
        """Namespaces with biosig_ros topics, the services, /diagnostics publishers."""
        topics = self.node.get_topic_names_and_types()
        # Servers only, node by node: the graph-wide list also names services that only have
        # clients (this panel's own, for a button pressed where no server exists).
        services = {}
        for name, namespace in self.node.get_node_names_and_namespaces():
            try:
                services.update(self.node.get_service_names_and_types_by_node(name, namespace))
            except Exception:  # noqa: BLE001 - the node went away between the two calls
                continue
        owners = {_gid_key(info.endpoint_gid): info.node_namespace
                  for info in self.node.get_publishers_info_by_topic("/diagnostics")}
        nodes: dict[str, set[str]] = {}
        for name, namespace in self.node.get_node_names_and_namespaces():
            nodes.setdefault(namespace.rstrip("/") or "/", set()).add(name)
        with self._lock:
            self._nodes = nodes
            self._namespaces = namespaces_of(topics)
            self._services = services
            self._diagnostics_owners = owners

    def _call(self, action: Action, namespace: str, params: dict, on_done) -> None:
        name = service_name(namespace, action)
        try:
            service_type, request = _request(action, params)
            expected = _type_name(service_type)
            with self._lock:
                offered = self._services.get(name, [])
            if offered and expected not in offered:
                on_done(Answer(action, name, False, f"{name} is a {', '.join(offered)} "
                               f"service; the panel calls a {expected}"))
                return
            with self._lock:
                client = self._clients.get(name)
                if client is None or client.srv_type is not service_type:
                    client = self.node.create_client(service_type, name)
                    self._clients[name] = client
            if not client.wait_for_service(timeout_sec=WAIT_FOR_SERVICE_S):
                on_done(absent_answer(action, name, WAIT_FOR_SERVICE_S))
                return
            timeout = ANSWER_TIMEOUT_S + (request.duration if action.kind == CALIBRATE_MVC
                                          else 0.0)
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            if not done.wait(timeout):
                future.cancel()
                if hasattr(client, "remove_pending_request"):  # not in every rclpy
                    client.remove_pending_request(future)
                on_done(Answer(action, name, False, f"no answer within {timeout:g} s"))
                return
            if future.exception() is not None:
                on_done(Answer(action, name, False, f"call failed: {future.exception()}"))
                return
            success, text = describe_answer(_fields(future.result()))
            on_done(Answer(action, name, success, text))
        except Exception as error:  # noqa: BLE001 - the button says what went wrong
            on_done(Answer(action, name, False, f"call failed: {error}"))

    # --- intake thread ---------------------------------------------------------------------

    def _poll(self) -> None:
        period = 1.0 / max(1.0, self.model.points_per_second)
        while not self._stop.wait(period):
            with self._lock:
                wanted = self._wanted_namespace
            if wanted != self._subscribed_namespace:
                self._subscribe(wanted)
            self._intake.poll_guarded()

    def _subscribe(self, namespace: str) -> None:
        for subscription in list(self.node_subscriptions()):
            self._intake.unsubscribe(subscription)
        self.model.clear(namespace)
        prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
        qos = input_qos()
        self._intake.subscribe(SignalChunk, f"{prefix}/emg/envelope", self._on_envelope, qos)
        self._intake.subscribe(JointState, f"{prefix}/ik/joint_states", self._on_joints, qos)
        self._intake.subscribe(AssistState, f"{prefix}/assist/state", self._on_assist, qos)
        self._intake.subscribe(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos,
                               with_info=True)
        self._subscribed_namespace = namespace

    def node_subscriptions(self):
        return list(self._intake.node.subscriptions)

    def _on_bad_message(self, topic: str, error: Exception) -> None:
        self.bad_messages += 1
        self.last_problem = f"{topic}: message ignored: {error}"

    def _on_envelope(self, msg: SignalChunk) -> None:
        channels = len(msg.channel_names)
        data = np.frombuffer(msg.data, dtype=np.float64)
        if channels == 0 or data.size != msg.sample_count * channels:
            raise ValueError(f"{data.size} values for {msg.sample_count} samples x "
                             f"{channels} channels")
        self.model.on_envelope(data.reshape(msg.sample_count, channels),
                               msg.first_sample_index, time_to_seconds(msg.header.stamp),
                               msg.sample_rate, list(msg.channel_names), msg.unit)

    def _on_joints(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            raise ValueError(f"{len(msg.name)} names, {len(msg.position)} positions")
        self.model.on_joints(list(msg.name), msg.position, time_to_seconds(msg.header.stamp))

    def _on_assist(self, msg: AssistState) -> None:
        self.model.on_assist(_assist_dict(msg))

    def _on_diagnostics(self, msg: DiagnosticArray, info: dict) -> None:
        """Only the statuses published by nodes of the shown namespace (a status names its
        node without namespace: the publisher's gid tells which node sent it; an rclpy
        whose message info lacks the gid falls back on the node names of the namespace)."""
        wanted = "/" + (self._subscribed_namespace or "").strip("/")
        statuses = [_status_dict(status) for status in msg.status]
        gid = info.get("publisher_gid") if isinstance(info, dict) else None
        with self._lock:
            if gid:
                owner = self._diagnostics_owners.get(_gid_key(gid))
                if owner is None or (owner.rstrip("/") or "/") != wanted:
                    return
            else:
                names = self._nodes.get(wanted, set())
                statuses = [s for s in statuses if s["name"] in names]
        if statuses:
            self.model.on_diagnostics(statuses)

    # --- end -----------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._intake.close()
        self._executor.remove_node(self.node)
        self.node.destroy_node()


def start(namespace: str = "", points_per_second: float = 30.0,
          window_s: float = 10.0) -> PanelAdapter:
    """rclpy initialised if needed, then an adapter with a fresh model."""
    if not rclpy.ok():
        rclpy.init()
    return PanelAdapter(PanelModel(window_s, points_per_second), namespace)
