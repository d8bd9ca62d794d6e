"""ViconWireServer: a Vicon DataStream server on TCP (default port 801) playing a WireScene.

Vicon's own client library (DataStream SDK) and its sample client connect to it as to Nexus or
Tracker. Frame numbers follow the clock from the server's epoch (so they jump over an outage,
like a Vicon system that kept capturing); the recording loops. Control hooks for tests: stall()
(connections stay open, nothing is sent), drop_connections() (optionally in the middle of a
frame), stop()/start() (the port closes and reopens; the frame clock keeps running).
Threads: one accept thread, two per connection; none touches a ROS executor.
"""
from __future__ import annotations

import errno
import math
import socket
import sys
import threading
import time
from pathlib import Path

from biosig_ros.devices.vicon_wire import wire_format as wf
from biosig_ros.devices.vicon_wire.connection import Connection
from biosig_ros.devices.vicon_wire.recording_scene import scene_from_file
from biosig_ros.devices.vicon_wire.scene import FrameBuilder, WireScene
from biosig_ros.errors import ConfigError

DEFAULT_PORT = 801
SUPPORTED_TYPES = frozenset({
    wf.CONTENTS, wf.STREAM_INFO, wf.APPLICATION_INFO, wf.SUBJECT_INFO, wf.FRAME_INFO,
    wf.FRAME_RATE_INFO, wf.TIMECODE, wf.LATENCY_INFO, wf.LABELED_RECONS, wf.UNLABELED_RECONS,
    wf.LOCAL_SEGMENTS, wf.GLOBAL_SEGMENTS, wf.DEVICE_INFO, wf.CHANNEL_INFO,
    wf.CHANNEL_INFO_EXTRA, wf.VOLTAGE_FRAME, wf.PING, wf.KEEP_ALIVE, wf.REQUEST_FRAME,
    wf.REQUEST_NEXT_FRAME, wf.FILTER})


class ViconWireServer:
    """scene: a WireScene, or a recording path (played with scene_from_file's defaults).

    epoch: wall-clock time (time.time()) of frame first_frame; a restarted simulator process
    given the same epoch continues the frame count. max_backlog_s: how far ServerPush may fall
    behind before it skips to the newest frame."""

    def __init__(self, scene: WireScene | str | Path, port: int = DEFAULT_PORT,
                 host: str = "127.0.0.1", first_frame: int = 1, epoch: float | None = None,
                 keepalive_s: float = 1.0, max_backlog_s: float = 1.0, log=None):
        if not isinstance(scene, WireScene):
            scene = scene_from_file(str(scene))
        if not 0 <= port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {port}")
        self.scene = scene
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.builder = FrameBuilder(scene, first_frame)
        self.first_frame = first_frame
        self.keepalive_s = keepalive_s
        self.max_backlog = max(1, int(max_backlog_s * scene.frame_rate))
        self.supported_types = SUPPORTED_TYPES
        now_wall, now_mono = time.time(), time.monotonic()
        self.t0 = now_mono - (now_wall - epoch) if epoch is not None else now_mono
        self.epoch = now_wall - (now_mono - self.t0)
        self.stalled_until = 0.0
        self._log = log or (lambda text: print(f"vicon_wire_sim: {text}", file=sys.stderr))
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.connections_accepted = 0

    # -- clock ---------------------------------------------------------------------------
    def frame_at(self, t: float) -> int:
        """The newest frame captured by monotonic time t."""
        return self.first_frame + int(math.floor((t - self.t0) * self.scene.frame_rate))

    def frame_time(self, frame: int) -> float:
        return self.t0 + (frame - self.first_frame) / self.scene.frame_rate

    def current_frame(self) -> int:
        return self.frame_at(time.monotonic())

    # -- life cycle ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "ViconWireServer":
        """Listen (again, on the same port after stop()) and accept clients in a thread."""
        if self._listener is not None:
            return self
        port = self._port if self._port is not None else self._requested_port
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, port))
        except OSError as error:
            listener.close()
            hint = " (ports below 1024 need privileges: choose another with --port / port=)" \
                if error.errno == errno.EACCES and port < 1024 else ""
            raise ConfigError(f"cannot listen on {self.host}:{port}: {error.strerror}{hint}") \
                from None
        listener.listen(8)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(listener,),
                                               name="vicon-wire-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every connection (the clients see the server go away)."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2)
            self._accept_thread = None
        self.drop_connections()

    def __enter__(self) -> "ViconWireServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- control hooks -------------------------------------------------------------------
    def stall(self, seconds: float) -> None:
        """Send nothing for `seconds` (connections stay open); frames of the stall are skipped
        as a server that fell behind would."""
        self.stalled_until = max(self.stalled_until, time.monotonic() + seconds)
        for connection in self.connections():
            connection.wake()

    def drop_connections(self, mid_frame: bool = False) -> int:
        """Close every client connection now, or (mid_frame) after half of its next frame."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            if mid_frame:
                connection.drop_mid_frame = True
            else:
                connection.close()
        if not mid_frame:
            for connection in connections:
                connection.join()
        return len(connections)

    def connections(self) -> list[Connection]:
        with self._lock:
            self._connections = [c for c in self._connections if not c.closed.is_set()]
            return list(self._connections)

    def log(self, text: str) -> None:
        self._log(text)

    # -- accepting -----------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                sock, address = listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, address)
            with self._lock:
                self._connections.append(connection)
                self.connections_accepted += 1
            connection.start()
