"""HTTP server of the live page: static assets, and frames pushed with Server-Sent Events.

Stdlib only (http.server), on its own threads: one accept thread and one thread per browser
connection. The refresh thread hands each frame to `broadcast()`, which only appends it to every
client's bounded queue and never waits for a socket: a slow or closed browser costs its own
thread, never the caller. When a client's queue is full its pending frames are dropped (oldest
first, all of them) and that client is sent a fresh snapshot instead, so its charts stay
consistent; a socket that accepts nothing for `write_timeout` seconds is closed (the browser's
EventSource reconnects by itself).

Routes: `/` (the page), its scripts and style (every file of static/), `/events` (SSE;
`?raw=1` adds raw EMG), `/state.json` (a snapshot, for tools and tests).
"""
from __future__ import annotations

import socket
import threading
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

STATIC_DIR = Path(__file__).resolve().parent / "static"
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8"}
_KEEPALIVE_S = 10.0
_SEND_BUFFER = 64 * 1024


class ClientQueue:
    """Frames waiting for one browser: at most `limit`; on overflow all are dropped and the
    client is marked for a resynchronising snapshot."""

    def __init__(self, raw: bool, limit: int):
        self.raw = raw
        self._limit = limit
        self._frames: deque[str] = deque()
        self._condition = threading.Condition()
        self.resync = False
        self.closed = False
        self.dropped = 0
        self.sent = 0

    def put(self, frame: str) -> None:
        with self._condition:
            if len(self._frames) >= self._limit:
                self.dropped += len(self._frames)
                self._frames.clear()
                self.resync = True
            self._frames.append(frame)
            self._condition.notify()

    def take(self, timeout: float) -> tuple[bool, list[str]] | None:
        """(resync needed, frames) once there is something, ([] after timeout); None when
        closed."""
        with self._condition:
            if not self._frames and not self.closed:
                self._condition.wait(timeout)
            if self.closed:
                return None
            frames = list(self._frames)
            self._frames.clear()
            resync, self.resync = self.resync, False
            return resync, ([] if resync else frames)

    def close(self) -> None:
        with self._condition:
            self.closed = True
            self._condition.notify()


class LiveServer:
    """The page's server. snapshot(raw) -> JSON of the init message."""

    def __init__(self, host: str, port: int, snapshot: Callable[[bool], str],
                 max_clients: int = 16, client_queue: int = 30, write_timeout: float = 5.0,
                 static_dir: Path = STATIC_DIR):
        self.snapshot = snapshot
        self.max_clients = max_clients
        self.client_queue = client_queue
        self.write_timeout = write_timeout
        self.assets = {f"/{p.name}": (p.read_bytes(), _CONTENT_TYPES[p.suffix])
                       for p in static_dir.iterdir() if p.suffix in _CONTENT_TYPES}
        self.assets["/"] = self.assets["/index.html"]
        self._clients: list[ClientQueue] = []
        self._lock = threading.Lock()
        self._dropped_by_gone = 0  # frames dropped for clients that have left since
        self._httpd = ThreadingHTTPServer((host, port), _Handler, bind_and_activate=True)
        self._httpd.daemon_threads = True
        self._httpd.live = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="live-http",
                                        daemon=True)
        self._thread.start()

    def clients(self) -> list[ClientQueue]:
        with self._lock:
            return list(self._clients)

    def broadcast(self, frame: str, frame_with_raw: str | None) -> None:
        """Queue one frame for every browser (never blocks on a socket)."""
        for client in self.clients():
            client.put(frame_with_raw if client.raw and frame_with_raw else frame)

    def register(self, raw: bool) -> ClientQueue | None:
        with self._lock:
            if len(self._clients) >= self.max_clients:
                return None
            client = ClientQueue(raw, self.client_queue)
            self._clients.append(client)
            return client

    def unregister(self, client: ClientQueue) -> None:
        client.close()
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
                self._dropped_by_gone += client.dropped

    @property
    def frames_dropped(self) -> int:
        """Frames dropped for slow browsers since the start."""
        with self._lock:
            return self._dropped_by_gone + sum(c.dropped for c in self._clients)

    def close(self) -> None:
        for client in self.clients():
            self.unregister(client)
        if self._thread is not None:  # shutdown() waits for serve_forever: only if it runs
            self._httpd.shutdown()
            self._thread.join(timeout=2.0)
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "biosig_ros-live/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass  # one line per request would drown the node's own output

    @property
    def live(self) -> LiveServer:
        return self.server.live  # type: ignore[attr-defined]

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path == "/events":
            raw = parse_qs(url.query).get("raw", ["0"])[0] in ("1", "true")
            self._events(raw)
        elif url.path == "/state.json":
            self._send(HTTPStatus.OK, self.live.snapshot(True).encode(), "application/json")
        elif url.path in self.live.assets:
            body, content_type = self.live.assets[url.path]
            self._send(HTTPStatus.OK, body, content_type)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _send(self, status, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _events(self, raw: bool) -> None:
        client = self.live.register(raw)
        if client is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", "text/plain")
            return
        self.close_connection = True
        try:
            self.connection.settimeout(self.live.write_timeout)
            # Small kernel buffers: a browser that reads too slowly fills them within a second
            # of frames, then its queue here overflows and it gets a fresh snapshot, instead
            # of megabytes of the past waiting in the socket.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self._write_event(self.live.snapshot(raw), retry=True)
            while True:
                taken = client.take(_KEEPALIVE_S)
                if taken is None:
                    return
                resync, frames = taken
                if resync:
                    self._write_event(self.live.snapshot(raw))
                elif not frames:
                    self.wfile.write(b": keepalive\n\n")
                for frame in frames:
                    self._write_event(frame)
                client.sent += len(frames)
        except (OSError, socket.timeout):
            return  # the browser went away or stopped reading: its EventSource reconnects
        finally:
            self.live.unregister(client)

    def _write_event(self, data: str, retry: bool = False) -> None:
        prefix = b"retry: 1000\n" if retry else b""
        self.wfile.write(prefix + b"data: " + data.encode() + b"\n\n")
        self.wfile.flush()
