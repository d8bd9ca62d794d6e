"""A device connection that survives the device: one I/O thread, retries, status (ROS-free).

A subclass writes four steps: connect() (open and check the device), stream() (start the device
and deliver data until stop_requested() or an error), stop_streaming() (the device stops
sending, the connection stays) and disconnect(). The owner drives them as a managed node does:

    open()   connect and check now, in the caller's thread (lifecycle "configure")
    start()  stream in a background thread (lifecycle "activate"); a lost device is reported,
             retried every `retry_interval` and resumed while started
    halt()   end the thread and stop the device streaming, keep the connection ("deactivate")
    stop()   halt() and disconnect ("cleanup" / "shutdown")
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

CONNECTING = "connecting"
STREAMING = "streaming"
CONNECTED = "connected"         # open and checked, not streaming
DISCONNECTED = "disconnected"   # lost or refused; retrying while started
STOPPED = "stopped"             # closed by its owner


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
    failures: int = 0               # connections that ended with an error
    last_error: str = ""


class DeviceLink:
    """Runs connect() / stream() in a background thread; see the module docstring.

    on_status(status) is called (from whichever thread changed it) on every change of state or
    message.
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
        self.connected = False
        self.after_loss = False     # the running stream() follows a loss (not a start())

    # -- subclass steps --------------------------------------------------------------------
    def connect(self) -> str:
        """Open the device and check it (rate, channels, ...); returns a one-line description.
        Raises DeviceError (or OSError) when the device is absent or unusable."""
        raise NotImplementedError

    def stream(self) -> None:
        """Start the device and deliver data until stop_requested(); call streaming(message)
        once data flows. Raise DeviceError when the device is lost."""
        raise NotImplementedError

    def stop_streaming(self) -> None:
        """Ask the device to stop sending, keeping the connection (default: nothing to do)."""

    def disconnect(self) -> None:
        """Close every connection; safe to call at any time, more than once."""

    def interrupt(self) -> None:
        """Unblock a stream() waiting on I/O; called by halt() (default: nothing, stream()
        polls stop_requested())."""

    # -- for the owner ---------------------------------------------------------------------
    def open(self) -> str:
        """connect() now, in this thread; raises DeviceError with the reason on failure."""
        if self.connected:
            return self.status.message
        self.set_status(CONNECTING, "connecting")
        try:
            description = self.connect()
        except Exception as error:  # noqa: BLE001 - reported, then raised as DeviceError
            text = describe_error(error)
            self.disconnect()
            self.set_status(DISCONNECTED, f"cannot connect: {text}",
                            failures=self.status.failures + 1, last_error=text)
            raise DeviceError(text) from error
        self.connected = True
        self.set_status(CONNECTED, description)
        return description

    def start(self) -> None:
        """Stream in a background thread until halt() or stop()."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"{self._name} already started")
        self._stop.clear()
        self.after_loss = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def halt(self, timeout: float = 5.0) -> None:
        """End streaming (the thread stops the device), keep the connection."""
        self._stop.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def stop(self, timeout: float = 5.0) -> None:
        """halt() and disconnect."""
        self.halt(timeout)
        self.disconnect()
        self.connected = False
        self.set_status(STOPPED, "stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> LinkStatus:
        with self._lock:
            return self._status

    # -- for subclasses --------------------------------------------------------------------
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
        """Call once per connection when data flows."""
        self.set_status(STREAMING, message, sessions=self.status.sessions + 1)

    # -- the loop --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.connected:
                    previous = self.status
                    self.set_status(CONNECTING, f"reconnecting after: {previous.last_error}"
                                    if previous.failures else "connecting")
                    self.connect()
                    self.connected = True
                self.stream()
                if not self._stop.is_set():
                    raise DeviceError("the device ended the session")
            except Exception as error:  # noqa: BLE001 - the link must outlive any failure
                self.connected = False
                self.disconnect()
                if self._stop.is_set():
                    break
                text = describe_error(error)
                lost = self.status.state == STREAMING
                self.after_loss = True
                self.set_status(DISCONNECTED, ("device lost: " if lost else "cannot connect: ")
                                + text, failures=self.status.failures + 1, last_error=text)
                self._stop.wait(self._retry_interval)
        if self.connected:
            try:
                self.stop_streaming()
                self.set_status(CONNECTED, "connected, not streaming")
            except Exception:  # noqa: BLE001 - a device that cannot stop is closed instead
                self.connected = False
                self.disconnect()
        if not self.connected:
            self.set_status(STOPPED, "not connected")


def describe_error(error: BaseException) -> str:
    """One line for a failure: the device's words, or the type of an internal defect."""
    if isinstance(error, (OSError, DeviceError, ValueError)):
        return str(error) or type(error).__name__
    # Anything else is a defect, not a device problem: say what it was.
    return f"internal error {type(error).__name__}: {error}"
