"""A device connection that survives the device: one I/O thread, sessions, retries, status.

A subclass implements session(): connect, configure, stream until stop_requested() or an error.
DeviceLink runs sessions in a loop in its own thread; when one ends with an error it reports
the loss, waits `retry_interval` and tries again, so a node keeps running through an outage.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

CONNECTING = "connecting"
STREAMING = "streaming"
DISCONNECTED = "disconnected"
STOPPED = "stopped"


def close_socket(sock: socket.socket) -> None:
    """Shut a socket down (waking a peer blocked in recv) and close it, ignoring errors."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class DeviceError(RuntimeError):
    """The device went away or answered something unusable; the link retries."""


@dataclass(frozen=True)
class LinkStatus:
    """A snapshot of the link for diagnostics."""

    state: str = CONNECTING
    message: str = "not connected yet"
    since: float = 0.0              # time.time() of the last state change
    sessions: int = 0               # sessions that reached STREAMING
    failures: int = 0               # sessions that ended with an error
    last_error: str = ""


class DeviceLink:
    """Runs session() in a background thread until stop(); see module docstring.

    on_status(status) is called from the I/O thread on every change of state or message.
    """

    def __init__(self, name: str, retry_interval: float,
                 on_status: Callable[[LinkStatus], None] | None = None):
        self._name = name
        self._retry_interval = retry_interval
        self._on_status = on_status
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status = LinkStatus(since=time.time())

    # -- for the owner -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def status(self) -> LinkStatus:
        with self._lock:
            return self._status

    # -- for subclasses ------------------------------------------------------------------
    def session(self) -> None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Unblock a session waiting on I/O (close its sockets); called by stop()."""

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def set_status(self, state: str, message: str, **changes) -> None:
        with self._lock:
            old = self._status
            if old.state == state and old.message == message and not changes:
                return
            since = time.time() if state != old.state else old.since
            self._status = replace(old, state=state, message=message, since=since, **changes)
            status = self._status
        if self._on_status is not None:
            self._on_status(status)

    def streaming(self, message: str) -> None:
        """Call once per session when data flows."""
        self.set_status(STREAMING, message, sessions=self.status.sessions + 1)

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            previous = self.status
            self.set_status(CONNECTING, f"reconnecting after: {previous.last_error}"
                            if previous.failures else "connecting")
            try:
                self.session()
                if not self._stop.is_set():
                    raise DeviceError("the device ended the session")
            except Exception as error:  # noqa: BLE001 - the link must outlive any failure
                if self._stop.is_set():
                    break
                text = _describe(error)
                lost = self.status.state == STREAMING
                self.set_status(DISCONNECTED, ("device lost: " if lost else "cannot connect: ")
                                + text, failures=self.status.failures + 1, last_error=text)
            self._stop.wait(self._retry_interval)
        self.set_status(STOPPED, "stopped")


def _describe(error: BaseException) -> str:
    if isinstance(error, (OSError, DeviceError, ValueError)):
        return str(error) or type(error).__name__
    # Anything else is a defect, not a device problem: say what it was.
    return f"internal error {type(error).__name__}: {error}"
