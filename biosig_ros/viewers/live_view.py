"""The live view without ROS: settings, state, HTTP server and the refresh thread.

The node feeds `LiveView.state` from its topic callbacks; everything else runs on the view's
own threads: a refresh thread that encodes one frame per refresh (about 30 per second) once for
all browsers, and the HTTP server's threads (one per browser).
"""
from __future__ import annotations

import errno
import math
import threading
import time
from dataclasses import dataclass, fields
from typing import Callable

from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field as _doc
from biosig_ros.viewers.http_server import LiveServer
from biosig_ros.viewers.live_state import LiveState
from biosig_ros.viewers.skeleton import Skeleton
from biosig_ros.viewers.torques import chosen_dofs


_PORT_ATTEMPTS = 10  # a taken port: try the next ones before giving up


@dataclass
class LiveViewSettings:
    host: str = _doc("127.0.0.1", "address the page is served on (127.0.0.1: this machine "
                                  "only; 0.0.0.0 lets other machines in)")
    port: int = _doc(8080, "TCP port of the page; when taken, the first free one of the next "
                           "9, else any free port (0: any); the address is printed at start",
                     range=(0, 65535))
    envelope_topic: str = _doc("emg/envelope", "SignalChunk of EMG envelopes ('' = none)")
    raw_topic: str = _doc("emg/raw", "SignalChunk of raw EMG, taken while a browser shows it "
                                     "('' = none)")
    markers_topic: str = _doc("markers", "MarkerSet drawn in the 3D view ('' = none)")
    joints_topic: str = _doc("ik/joint_states", "JointState of the model's DoFs ('' = none)")
    torque_dofs: list[str] = _doc(
        ["ulna_elbow_flexion_RotZ"], "model DoFs whose joint torques are plotted, muscle model "
        "and inverse dynamics (torque_node, in the exo_demo graph); [] = no torque plot")
    torque_muscle_topic: str = _doc("torque/muscle", "JointState of the muscle-model torques "
                                                     "(effort, N.m per DoF; '' = none)")
    torque_inverse_dynamics_topic: str = _doc(
        "torque/inverse_dynamics", "JointState of the inverse-dynamics torques (effort, N.m "
        "per DoF; '' = none)")
    model_path: str = _doc("data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod",
                           "biorbd model whose skeleton is drawn from the joint states "
                           "('' = no skeleton)")
    intake_rate: float = _doc(0.0, "times per second a thread of its own takes the topics' "
                                   "queued messages; 0: the refresh thread takes them before "
                                   "each refresh (one wake-up for both; the JointState and "
                                   "MarkerArray wait at most one period)",
                              range=(0.0, 1000.0))
    refresh_rate: float = _doc(30.0, "frames per second sent to browsers", range=(1.0, 120.0))
    window_s: float = _doc(10.0, "seconds of history in the charts", range=(1.0, 120.0))
    chart_rate: float = _doc(100.0, "points per second per channel of envelopes and angles",
                             range=(1.0, 1000.0))
    raw_chart_rate: float = _doc(250.0, "min/max pairs per second per channel of raw EMG",
                                 range=(1.0, 2000.0))
    max_clients: int = _doc(16, "browsers served at once (more get HTTP 503)", range=(1, 256))
    client_queue: int = _doc(30, "frames queued per browser before they are dropped and the "
                                 "browser resynchronised", range=(2, 1000))
    # Standard messages for ROS viewers (RViz, Foxglove, PlotJuggler, rqt_plot).
    viz_markers_topic: str = _doc("viz/markers", "MarkerArray: marker spheres and skeleton "
                                                 "lines ('' = not published)")
    viz_rate: float = _doc(30.0, "MarkerArray messages per second (0 = one per marker frame)",
                           range=(0.0, 1000.0))
    marker_diameter: float = _doc(0.02, "metres: sphere size in the MarkerArray",
                                  range=(0.001, 1.0))
    envelope_channels_topic: str = _doc(
        "emg/envelope_channels", "JointState with one name per EMG channel and the envelope "
        "as position ('' = not published)")
    channel_rate: float = _doc(100.0, "JointState envelope samples per second (0 = every "
                                      "sample)", range=(0.0, 10000.0))
    frame_id: str = _doc("world", "frame of the MarkerArray (the markers' fixed lab frame)")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value, bounds = getattr(self, spec.name), spec.metadata.get("range")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"parameter '{spec.name}' must be a finite number")
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise ConfigError(f"parameter '{spec.name}' must be within {bounds[0]}-"
                                  f"{bounds[1]}, got {value}")
            if spec.name.endswith("topic") and value.startswith("~"):
                raise ConfigError(f"parameter '{spec.name}': a private name makes no sense here")

    def topics(self) -> dict[str, str]:
        """Stream -> topic as given ('' = not taken); no torque topic without torque DoFs."""
        plotted = bool(chosen_dofs(self.torque_dofs))
        return {"envelope": self.envelope_topic, "raw": self.raw_topic,
                "markers": self.markers_topic, "joints": self.joints_topic,
                "torque_muscle": self.torque_muscle_topic if plotted else "",
                "torque_inverse_dynamics": self.torque_inverse_dynamics_topic if plotted else ""}


class LiveView:
    """State + server + refresh thread. `start()` binds the port (ConfigError if taken)."""

    def __init__(self, settings: LiveViewSettings, skeleton: Skeleton | None = None,
                 topics: dict[str, str] | None = None,
                 before_refresh: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time):
        """clock: the time the page's delays and rates are measured on (the node's clock:
        simulated under use_sim_time, to match the stamps)."""
        self.settings = settings
        self._before_refresh = before_refresh  # e.g. the node taking its queued messages
        topics = topics or settings.topics()
        self.state = LiveState(topics, settings.window_s, settings.chart_rate,
                               settings.raw_chart_rate, settings.refresh_rate, skeleton,
                               clock, settings.torque_dofs)
        self.server = self._bind(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="live-refresh",
                                        daemon=True)
        self.frames_sent = 0
        self.encode_errors = 0
        self.last_error = ""  # the node reports it (a frame that failed to encode)

    def _bind(self, settings: LiveViewSettings) -> LiveServer:
        """The server on `port`, else on the first free one of the next 9, else on any free
        port (other live views or programs hold them): a demo does not stop for a busy port.
        ConfigError when the address itself cannot be served."""
        ports = [settings.port] if settings.port == 0 else [
            *range(settings.port, min(settings.port + _PORT_ATTEMPTS, 65536)), 0]
        for port in ports:
            try:
                return LiveServer(settings.host, port, self.state.snapshot,
                                  settings.max_clients, settings.client_queue)
            except OSError as error:
                if error.errno != errno.EADDRINUSE or port == 0:
                    raise ConfigError(
                        f"cannot serve the live view on {settings.host}:{port}: "
                        f"{error.strerror or error} (parameters 'host' and 'port')") from error
        raise AssertionError("unreachable: port 0 either binds or raises")

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> str:
        self.server.start()
        self._thread.start()
        return self.url

    def _refresh_loop(self) -> None:
        period = 1.0 / self.settings.refresh_rate
        next_tick = time.monotonic()
        while not self._stop.is_set():
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -period:  # fell behind (a stalled process): do not burst to catch up
                next_tick = time.monotonic()
            elif delay > 0 and self._stop.wait(delay):
                return
            self.refresh()

    def refresh(self) -> None:
        """One frame for every browser (also drains the buffers when nobody watches)."""
        if self._before_refresh is not None:
            self._before_refresh()
        clients = self.server.clients()
        if not clients:
            self.state.drain()
            return
        try:
            frame, with_raw = self.state.frame(with_raw=any(c.raw for c in clients))
        except Exception as error:  # noqa: BLE001 - one bad frame must not end the view
            self.encode_errors += 1
            self.last_error = f"{type(error).__name__}: {error}"
            return
        self.server.broadcast(frame, with_raw)
        self.frames_sent += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.server.close()
