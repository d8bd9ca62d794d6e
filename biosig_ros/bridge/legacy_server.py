"""The biosiglive-compatible TCP server: one thread, a selector, many clients at once.

Each connection carries one request (biosiglive clients reconnect for every request): the
server reads until the bytes form a complete plain-data pickle, answers with the
length-prefixed reply and closes. Nothing a client sends or fails to send stops the others:
- the bytes are walked opcode by opcode as they arrive (pickle_scan.PickleScan) before anything
  is unpickled: a declared length, frame or memo index beyond `max_request_bytes` is refused
  before any allocation, and so are opcodes a plain request never needs; a complete request is
  then decoded once by pickle_compat.loads_plain (legacy_protocol.try_decode_request);
- garbage, refused opcodes and invalid fields get an error reply and are closed;
- a client that has not sent a whole request within `request_timeout` s, or not read its reply
  within `reply_timeout` s, is dropped; a client that closes early is simply forgotten;
- the server always accepts: a peer address at `max_connections_per_peer`, or the whole server
  at `max_connections`, makes room by evicting the oldest connection still waiting for its
  request (of that peer; at the global cap, of the peer holding the most connections). Idle
  or slow connections can therefore never keep a well-behaved client, which sends its request
  at once, waiting in the kernel's backlog. Connections writing a reply are never evicted.
The thread never blocks on a socket (all sockets are non-blocking), so a slow client costs
nothing but a file descriptor until its timeout or eviction. Clients polling the same request
between two data updates share one encoded reply (cached per data version).
"""
from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
import time
from typing import Callable

import numpy as np

from biosig_ros.bridge.legacy_protocol import (
    LegacyRequest, RequestError, encode_error, encode_reply, select, try_decode_request)
from biosig_ros.bridge.pickle_scan import PickleScan
from biosig_ros.bridge.ring_buffers import SourceBuffers
from biosig_ros.bridge.server_settings import ServerSettings, ServerStats
from biosig_ros.errors import ConfigError

__all__ = ["LegacyServer", "ServerSettings", "ServerStats", "copy_reply", "reply_from_buffers"]

_LOG = logging.getLogger(__name__)
_RECV_SIZE = 65536
_POLL_S = 0.1
_CACHE_ENTRIES = 16
_ACCEPT_BATCH = 64  # accepts per loop round: the backlog drains without starving the others
_EVICTED = encode_error("evicted: too many open connections")


class _Connection:
    __slots__ = ("sock", "host", "received", "outgoing", "deadline", "writing", "scan")

    def __init__(self, sock: socket.socket, host: str, deadline: float, limit: int):
        self.sock = sock
        self.host = host
        self.received = bytearray()
        self.outgoing: memoryview | None = None
        self.deadline = deadline
        self.writing = False
        self.scan = PickleScan(limit)


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
        self._connections: dict[int, _Connection] = {}   # in accept order: oldest first
        self._per_host: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._accepting = True
        try:
            self._listener = socket.create_server(
                (settings.bind_address, settings.port), backlog=256, reuse_port=False)
        except OSError as error:
            raise ConfigError(f"cannot listen on {settings.bind_address}:{settings.port} "
                              "(parameters 'bind_address', 'port'): "
                              f"{error.strerror or error}") from None
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
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.stats.last_error = f"accept: {error.strerror}"
                    return
                raise
            host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            if self._per_host.get(host, 0) >= self.settings.max_connections_per_peer:
                self._evict(host)
            if len(self._connections) >= self.settings.max_connections:
                self._evict_from_busiest()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.stats.connections += 1
            connection = _Connection(sock, host, self._clock() + self.settings.request_timeout,
                                     self.settings.max_request_bytes)
            self._register(connection)
            self._read(connection)  # the request is often there already: skip a select round
            if len(self._connections) >= self.settings.max_connections \
                    and all(c.writing for c in self._connections.values()):
                # Nothing left to evict: the next clients wait in the backlog until one ends.
                self._selector.unregister(self._listener)
                self._accepting = False
                self.stats.paused += 1
                return

    def _evict_from_busiest(self) -> None:
        for host, _ in sorted(self._per_host.items(), key=lambda item: -item[1]):
            if self._evict(host):
                return

    def _evict(self, host: str) -> bool:
        """Close the oldest connection of host still waiting for its request."""
        for connection in self._connections.values():
            if connection.host == host and not connection.writing:
                self.stats.evicted += 1
                try:  # best effort: tell it why, without waiting for it to read
                    connection.sock.send(_EVICTED)
                except OSError:
                    pass
                self._close(connection)
                return True
        return False

    def _register(self, connection: _Connection) -> None:
        self._connections[connection.sock.fileno()] = connection
        self._per_host[connection.host] = self._per_host.get(connection.host, 0) + 1
        self._selector.register(connection.sock, selectors.EVENT_READ, connection)
        self.stats.open_connections = len(self._connections)

    def _read(self, connection: _Connection) -> None:
        if connection.sock.fileno() < 0 or connection.writing:
            return
        try:
            # Never buffer more than one byte past the limit.
            data = connection.sock.recv(
                min(_RECV_SIZE, self.settings.max_request_bytes + 1 - len(connection.received)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # a reset connection
        if not data:  # the client gave up (or sent a request without waiting for the reply)
            self._drop(connection)
            return
        connection.received += data
        limit = self.settings.max_request_bytes
        try:
            complete = connection.scan.feed(connection.received)
        except RequestError as error:
            self._error(connection, str(error))
            return
        if not complete and len(connection.received) > limit:
            self._error(connection, f"request of at least {len(connection.received)} bytes "
                                    f"exceeds the limit of {limit} bytes")
            return
        if not complete and len(connection.received) > len(data):
            return  # incomplete: wait for the next segment (or the timeout)
        # Complete, or a first piece: decoding it answers garbage at once (the walk has
        # bounded every length it declares).
        end = connection.scan.pos if complete else len(connection.received)
        try:
            request = try_decode_request(bytes(connection.received[:end]))
        except RequestError as error:
            self._error(connection, str(error))
            return
        if request is None:
            if complete:
                self._error(connection, "request is not a complete pickle")
            return
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
            if self._connections.pop(fileno, None) is not None:
                left = self._per_host[connection.host] - 1
                if left:
                    self._per_host[connection.host] = left
                else:
                    del self._per_host[connection.host]
            connection.sock.close()
        connection.outgoing = None
        self.stats.open_connections = len(self._connections)
        if not self._accepting and len(self._connections) < self.settings.max_connections \
                and not self._stop.is_set():
            self._selector.register(self._listener, selectors.EVENT_READ, None)
            self._accepting = True
