"""The biosiglive-compatible TCP server: one thread, a selector, many clients at once.

Each connection carries one request (biosiglive clients reconnect for every request): the
server reads until the bytes form a complete plain-data pickle, answers with the
length-prefixed reply and closes. Nothing a client sends or fails to send stops the others:
- requests are decoded only by pickle_compat.loads_plain (legacy_protocol.try_decode_request);
- a request larger than `max_request_bytes`, or whose pickle frame announces more, gets an
  error reply and is closed; garbage, refused globals and invalid fields get an error reply;
- a request is decoded when its first piece arrives and then only when it may be complete
  (legacy_protocol.worth_decoding), at most _MAX_DECODE_ATTEMPTS times: a client dripping
  bytes cannot make the server re-parse its request at every byte;
- a client that has not sent a whole request within `request_timeout` s, or not read its reply
  within `reply_timeout` s, is dropped; a client that closes early is simply forgotten;
- at `max_connections` open connections the server stops accepting: new clients wait in the
  kernel's backlog until a connection ends (a burst of clients is served late, not refused).
The thread never blocks on a socket (all sockets are non-blocking), so a slow client costs
nothing but a file descriptor until its timeout. Clients polling the same request between two
data updates share one encoded reply (cached per data version).
"""
from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from biosig_ros.bridge.legacy_protocol import (
    LegacyRequest, RequestError, declared_size, encode_error, encode_reply, select,
    try_decode_request, worth_decoding)
from biosig_ros.bridge.ring_buffers import SourceBuffers
from biosig_ros.errors import ConfigError

_LOG = logging.getLogger(__name__)
_RECV_SIZE = 65536
_POLL_S = 0.1
_CACHE_ENTRIES = 16
# Decoding attempts allowed per request: each re-parses what arrived (up to max_request_bytes).
# A real client's request arrives in one or two segments.
_MAX_DECODE_ATTEMPTS = 16


@dataclass
class ServerSettings:
    """Where and how the legacy server listens."""

    bind_address: str = field(default="127.0.0.1", metadata={
        "doc": "address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)"})
    port: int = field(default=50000, metadata={
        "doc": "TCP port (biosiglive's default 50000; 0 picks a free port)"})
    max_request_bytes: int = field(default=8192, metadata={
        "doc": "largest request accepted (a biosiglive Message pickles to about 100 bytes)"})
    request_timeout: float = field(default=2.0, metadata={
        "doc": "seconds a client has to send its whole request after connecting"})
    reply_timeout: float = field(default=5.0, metadata={
        "doc": "seconds a client has to read its whole reply"})
    max_connections: int = field(default=128, metadata={
        "doc": "open connections served at once; more wait in the backlog"})

    def __post_init__(self):
        if not self.bind_address:
            raise ConfigError("parameter 'bind_address' must not be empty")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"parameter 'port' must be in 0..65535, got {self.port}")
        if self.max_request_bytes < 64:
            raise ConfigError(f"parameter 'max_request_bytes' must be >= 64, got {self.max_request_bytes}")
        for name in ("request_timeout", "reply_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"parameter '{name}' must be > 0, got {getattr(self, name)}")
        if self.max_connections < 1:
            raise ConfigError(f"parameter 'max_connections' must be >= 1, got {self.max_connections}")


@dataclass
class ServerStats:
    """Counters, read by the node's diagnostics (plain ints: updated by one thread)."""

    connections: int = 0
    replies: int = 0
    error_replies: int = 0
    timeouts: int = 0
    dropped: int = 0          # closed by the client before its reply was sent
    paused: int = 0           # times accepting paused at max_connections
    open_connections: int = 0
    last_error: str = ""


class _Connection:
    __slots__ = ("sock", "peer", "received", "outgoing", "deadline", "writing", "attempts")

    def __init__(self, sock: socket.socket, peer, deadline: float):
        self.sock = sock
        self.peer = peer
        self.received = bytearray()
        self.outgoing: memoryview | None = None
        self.deadline = deadline
        self.writing = False
        self.attempts = 0


def _request_key(request: LegacyRequest) -> tuple:
    return request.command, request.nb_frames_to_get, tuple(sorted(request.down_sampling.items()))


def copy_reply(value):
    """Deep-copy the arrays of a reply built from buffer views (the views change on push)."""
    if isinstance(value, dict):
        return {key: copy_reply(v) for key, v in value.items()}
    if isinstance(value, list):
        return [copy_reply(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def reply_from_buffers(buffers: SourceBuffers, request: LegacyRequest) -> dict:
    """The reply dict for a request, from a consistent snapshot of the buffers."""
    with buffers.lock:
        views = buffers.views()
        if not views and request.command is None:
            # biosiglive's server would block until data arrives; say why instead.
            raise RequestError("no data yet" + (f" for {', '.join(buffers.keys)}" if buffers.keys
                                                 else ": the bridge serves no topic"))
        return copy_reply(select(views, request))


class LegacyServer:
    """Serves `answer(request) -> reply dict` to biosiglive clients from its own thread.

    version(), when given, returns a number that changes whenever answers may change: equal
    requests at the same version get the same encoded reply without rebuilding it.
    """

    def __init__(self, settings: ServerSettings, answer: Callable[[LegacyRequest], dict],
                 version: Callable[[], int] | None = None, clock=time.monotonic):
        self.settings = settings
        self._answer = answer
        self._version = version
        self._cache: dict = {}
        self._cache_version = None
        self._clock = clock
        self.stats = ServerStats()
        self._selector = selectors.DefaultSelector()
        self._connections: dict[int, _Connection] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._accepting = True
        try:
            self._listener = socket.create_server(
                (settings.bind_address, settings.port), backlog=256, reuse_port=False)
        except OSError as error:
            raise ConfigError(f"cannot listen on {settings.bind_address}:{settings.port} "
                              f"(parameters 'bind_address', 'port'): {error.strerror or error}") from None
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    @property
    def address(self) -> tuple[str, int]:
        """The bound (address, port): the real port when settings.port is 0."""
        return self._listener.getsockname()[:2]

    def start(self) -> "LegacyServer":
        self._thread = threading.Thread(target=self._run, name="legacy_server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
        for connection in list(self._connections.values()):
            self._close(connection)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- the event loop -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._selector.select(self._next_timeout())
                for key, mask in events:
                    if key.data is None:
                        self._accept()
                    elif key.data == "wake":
                        self._wake_r.recv(64)
                    elif mask & selectors.EVENT_READ and not key.data.writing:
                        self._read(key.data)
                    elif mask & selectors.EVENT_WRITE:
                        self._write(key.data)
                self._expire()
            except Exception as error:  # noqa: BLE001 - the loop must outlive any bug
                self.stats.last_error = f"{type(error).__name__}: {error}"
                _LOG.exception("legacy server loop error (continuing)")
                time.sleep(0.01)

    def _next_timeout(self) -> float:
        if not self._connections:
            return _POLL_S
        soonest = min(c.deadline for c in self._connections.values())
        return max(0.0, min(_POLL_S, soonest - self._clock()))

    def _accept(self) -> None:
        for _ in range(64):  # drain the backlog without starving established connections
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.stats.last_error = f"accept: {error.strerror}"
                    return
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.stats.connections += 1
            connection = _Connection(sock, peer, self._clock() + self.settings.request_timeout)
            self._register(connection)
            self._read(connection)  # the request is often there already: skip a select round
            if len(self._connections) >= self.settings.max_connections:
                self._selector.unregister(self._listener)
                self._accepting = False
                self.stats.paused += 1
                return

    def _register(self, connection: _Connection) -> None:
        self._connections[connection.sock.fileno()] = connection
        self._selector.register(connection.sock, selectors.EVENT_READ, connection)
        self.stats.open_connections = len(self._connections)

    def _read(self, connection: _Connection) -> None:
        if connection.sock.fileno() < 0 or connection.writing:
            return
        try:
            data = connection.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # a reset connection
        if not data:  # the client gave up (or sent a request without waiting for the reply)
            self._drop(connection)
            return
        connection.received += data
        limit = self.settings.max_request_bytes
        announced = declared_size(connection.received)
        if len(connection.received) > limit or (announced is not None and announced > limit):
            size = max(len(connection.received), announced or 0)
            self._error(connection, f"request of {'at least ' if announced is None else ''}"
                                    f"{size} bytes exceeds the limit of {limit} bytes")
            return
        # The first piece is always decoded (garbage is answered at once), later ones only
        # when they may complete the request.
        if connection.attempts and not worth_decoding(connection.received):
            return  # incomplete: wait for the next segment (or the timeout)
        connection.attempts += 1
        try:
            request = try_decode_request(bytes(connection.received))
        except RequestError as error:
            self._error(connection, str(error))
            return
        if request is None:
            if connection.attempts >= _MAX_DECODE_ATTEMPTS:
                self._error(connection, f"request still incomplete after {connection.attempts} "
                                        "pieces: send it in one piece")
            return  # incomplete: wait for the next segment (or the timeout)
        cached = self._cached(request)
        if cached is not None:
            self.stats.replies += 1
            self._reply(connection, cached)
            return
        version = self._version() if self._version is not None else None
        try:
            reply = self._answer(request)
        except RequestError as error:
            self._error(connection, str(error))
            return
        except Exception as error:  # noqa: BLE001 - a bug must not leave the client hanging
            _LOG.exception("legacy server: building a reply failed")
            self._error(connection, f"internal error: {type(error).__name__}: {error}")
            return
        self.stats.replies += 1
        payload = encode_reply(reply)
        if version is not None:
            if version != self._cache_version:
                self._cache, self._cache_version = {}, version
            if len(self._cache) < _CACHE_ENTRIES:
                self._cache[_request_key(request)] = payload
        self._reply(connection, payload)

    def _cached(self, request: LegacyRequest) -> bytes | None:
        if self._version is None or self._version() != self._cache_version:
            return None
        return self._cache.get(_request_key(request))

    def _error(self, connection: _Connection, message: str) -> None:
        self.stats.error_replies += 1
        self.stats.last_error = message
        self._reply(connection, encode_error(message))

    def _reply(self, connection: _Connection, payload: bytes) -> None:
        connection.writing = True
        connection.outgoing = memoryview(payload)
        connection.deadline = self._clock() + self.settings.reply_timeout
        self._write(connection)
        if connection.outgoing is not None and connection.sock.fileno() >= 0:
            self._selector.modify(connection.sock, selectors.EVENT_WRITE, connection)

    def _write(self, connection: _Connection) -> None:
        try:
            while connection.outgoing is not None and len(connection.outgoing):
                sent = connection.sock.send(connection.outgoing)
                connection.outgoing = connection.outgoing[sent:]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(connection)
            return
        connection.outgoing = None
        self._close(connection)

    def _expire(self) -> None:
        now = self._clock()
        for connection in [c for c in self._connections.values() if c.deadline <= now]:
            self.stats.timeouts += 1
            if connection.writing:
                self._close(connection)
            else:
                # Tell a slow sender why, best effort, without waiting for it to read.
                try:
                    connection.sock.send(encode_error(
                        f"request not complete after {self.settings.request_timeout} s"))
                except OSError:
                    pass
                self._close(connection)

    def _drop(self, connection: _Connection) -> None:
        """The client went away before its exchange was complete."""
        self.stats.dropped += 1
        self._close(connection)

    def _close(self, connection: _Connection) -> None:
        fileno = connection.sock.fileno()
        if fileno >= 0:
            try:
                self._selector.unregister(connection.sock)
            except (KeyError, ValueError):
                pass
            self._connections.pop(fileno, None)
            connection.sock.close()
        connection.outgoing = None
        self.stats.open_connections = len(self._connections)
        if not self._accepting and len(self._connections) < self.settings.max_connections \
                and not self._stop.is_set():
            self._selector.register(self._listener, selectors.EVENT_READ, None)
            self._accepting = True
