"""The one place that talks to a Vicon DataStream client: Vicon's own Python wrapper
(`vicon_dssdk.ViconDataStream`), the project's binding over Vicon's client library built by
tools/bootstrap.sh (biosig_ros.devices.vicon_sdk_client), or the API stand-in
(biosig_ros.devices.vicon_simulator): same calls, same return shapes.

Everything above this adapter (ViconClient, the node) is identical for all of them. SDK errors
become DeviceError (the link retries); the SDK's blocking Connect runs in a helper thread so
that a host that never answers fails after `connect_timeout`. Neither vicon_dssdk nor the built
library available is a ConfigError saying how to build it.
"""
from __future__ import annotations

import importlib
import threading
import time
from typing import Callable

import numpy as np

from biosig_ros.devices.device_link import DeviceError
from biosig_ros.errors import ConfigError

# Longest the connection waits for a frame with markers (none may be in view). 1 s was too
# short in a suite run on the loaded 2-CPU machine: the first pushed frames lacked the markers.
_WARM_UP_S = 3.0

SDK_MODULE = "vicon_dssdk.ViconDataStream"
DEFAULT_PORT = 801
STREAM_MODES = ("ServerPush", "ClientPull", "ClientPullPreFetch")
# SDK unit enum member names -> SI unit strings on topics.
UNIT_NAMES = {"EVolt": "V", "ENewton": "N", "ENewtonMeter": "N.m", "EMeter": "m",
              "EKilogram": "kg", "ESecond": "s", "EAmpere": "A", "EMeterPerSecond": "m/s",
              "EMeterPerSecondSquared": "m/s^2", "ERadianPerSecond": "rad/s",
              "ERadianPerSecondSquared": "rad/s^2", "EHertz": "Hz", "EJoule": "J", "EWatt": "W",
              "EPascal": "Pa", "ETesla": "T", "EUnitUnknown": ""}


def load_sdk():
    """(module with Client and DataStreamException, one line saying which and its version).

    Vicon's own vicon_dssdk when importable, else the library built by tools/bootstrap.sh;
    ConfigError naming how to build it when neither is there."""
    try:
        module = importlib.import_module(SDK_MODULE)
    except ImportError:
        module = None
    if module is not None:
        version = _version_text(module.Client())
        where = getattr(module, "__file__", SDK_MODULE)
        return module, f"Vicon's vicon_dssdk {version} ({where})"
    from biosig_ros.devices import vicon_sdk_client, vicon_sdk_library

    try:
        version = _version_text(vicon_sdk_client.Client())
    except vicon_sdk_library.SdkNotBuilt as error:
        raise ConfigError(f"backend 'sdk': vicon_dssdk is not importable and {error}; or "
                          f"use backend: simulator") from None
    return vicon_sdk_client, (f"Vicon DataStream SDK {version} built by tools/bootstrap.sh "
                              f"({vicon_sdk_library.library_path()})")


def _version_text(client) -> str:
    try:
        return ".".join(str(part) for part in client.GetVersion())
    except Exception:  # noqa: BLE001 - a version is only informative
        return "(version unknown)"


def host_and_port(host: str) -> str:
    """"host:port" as the SDK will use it (port 801 when none is given)."""
    name, _, port = host.strip().rpartition(":")
    return host.strip() if name and port.isdigit() else f"{host.strip()}:{DEFAULT_PORT}"


class ConnectAttempt:
    """One SDK Connect(host) in its own thread (it may outlive the wait of its caller)."""

    def __init__(self, client, host: str):
        self.client = client
        self.host = host
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, name="vicon-connect", daemon=True).start()

    def _run(self) -> None:
        try:
            self.client.Connect(self.host)
        except Exception as error:  # noqa: BLE001 - handed to the caller
            self.error = error
        finally:
            self.done.set()

    def finished_unusable(self) -> bool:
        """Done, and failed or no longer connected (a new attempt is needed)."""
        if not self.done.is_set():
            return False
        try:
            return self.error is not None or not self.client.IsConnected()
        except Exception:  # noqa: BLE001 - an unusable client
            return True


class ViconAdapter:
    """Thin wrapper over SDK-like Clients. module provides Client and DataStreamException;
    new_client() makes a fresh Client for every connection."""

    def __init__(self, module, new_client: Callable[[], object], description: str = ""):
        self._module = module
        self._new_client = new_client
        self._client = None
        self._pending: ConnectAttempt | None = None
        self._warm_up_frame: int | None = None   # the last frame pulled while connecting
        self._errors = (module.DataStreamException,)
        self.description = description      # which client library, and its version

    @classmethod
    def for_sdk(cls) -> "ViconAdapter":
        module, description = load_sdk()
        return cls(module, module.Client, description)

    @classmethod
    def for_simulator(cls, server) -> "ViconAdapter":
        from biosig_ros.devices import vicon_simulator

        return cls(vicon_simulator, lambda: vicon_simulator.Client(server),
                   "API stand-in biosig_ros.devices.vicon_simulator")

    @property
    def _live(self):
        if self._client is None:
            raise DeviceError("Vicon: not connected")
        return self._client

    def _call(self, what: str, method: Callable, *args):
        try:
            return method(*args)
        except self._errors as error:
            raise DeviceError(f"Vicon {what}: {error}") from error

    # -- connection ----------------------------------------------------------------------
    def connect(self, host: str, stream_mode: str, buffer_size: int, devices: bool,
                timeout: float = 2.0) -> None:
        """Connect a fresh client within `timeout` s and enable what the node reads (markers,
        optionally device outputs)."""
        self.disconnect()
        self._client = c = self._connected_client(host, timeout)
        # The buffer first: once the stream mode is set, frames arrive.
        if buffer_size > 1:
            self._call("SetBufferSize", c.SetBufferSize, buffer_size)
        self._call("EnableMarkerData", c.EnableMarkerData)
        if devices:
            self._call("EnableDeviceData", c.EnableDeviceData)
        # Vicon's client sends the data types enabled above from its I/O thread, after the
        # next packet it reads, whereas SetStreamMode(ServerPush) goes out at once: the first
        # pushed frames would lack the markers (reported occluded). Frames pulled first (the
        # mode after Connect is ClientPull) get the types to the server before it pushes:
        # two at least, and on a loaded machine more, until one carries a visible marker and
        # (devices) a device value (bounded: a scene may have nothing in view).
        deadline = time.monotonic() + _WARM_UP_S
        for pulled in range(1, 1000):
            got = self._call("GetFrame", c.GetFrame)
            if pulled >= 2 and ((got and self._carries(devices))
                                or time.monotonic() > deadline):
                break
        # That pulled frame is still the client's current one: not the stream's first (the
        # frames between it and the first pushed one were never sent, nor lost).
        self._warm_up_frame = int(self._call("GetFrameNumber", c.GetFrameNumber))
        mode = getattr(self._module.Client.StreamMode, f"E{stream_mode}")
        self._call("SetStreamMode", c.SetStreamMode, mode)

    def _carries(self, devices: bool) -> bool:
        """Whether the current frame holds a visible marker and (devices) a device value; False
        as well when the server has no frame to describe yet (connected, not streaming)."""
        try:
            return self._any_marker_visible() and (not devices or self._any_device_value())
        except DeviceError:
            return False

    def _any_marker_visible(self) -> bool:
        """Whether the current frame holds the position of any subject's marker."""
        return any(not self.marker_positions(subject, self.marker_names(subject))[1].all()
                   for subject in self.subject_names())

    def _any_device_value(self) -> bool:
        """Whether the current frame holds a value of any device output."""
        return any(not self.device_values(device, output, component)[1]
                   for device in self.device_names()
                   for output, component, _unit in self.device_outputs(device))

    def _connected_client(self, host: str, timeout: float):
        """A client connected to host. The SDK's Connect blocks without a time limit (a host
        that drops the packets: the OS's minutes), so it runs in a helper thread; after
        `timeout` a DeviceError is raised and the attempt goes on there. The next call waits
        for that same attempt (one at a time: retries add no threads) and takes its client if
        it got through."""
        address = host_and_port(host)
        attempt = self._pending
        if attempt is not None and (attempt.host != host or attempt.finished_unusable()):
            attempt = None
        if attempt is None:
            attempt = self._pending = ConnectAttempt(self._new_client(), host)
        if not attempt.done.wait(timeout):
            raise DeviceError(f"no Vicon DataStream server answered at {address} within "
                              f"{timeout:g} s (host up? firewall open for TCP {address}?)")
        self._pending = None
        error = attempt.error
        if error is None:
            return attempt.client
        if isinstance(error, self._errors):
            reason = str(error).replace(host, "").strip() or type(error).__name__
            raise DeviceError(f"cannot connect to a Vicon DataStream server at {address} "
                              f"({reason})") from error
        raise error

    def is_connected(self) -> bool:
        try:
            return self._client is not None and bool(self._client.IsConnected())
        except self._errors:
            return False

    def disconnect(self) -> None:
        """Disconnect and drop the client (the next connect() makes a new one)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.Disconnect()
        except self._errors:
            pass

    # -- frames --------------------------------------------------------------------------
    def next_frame(self) -> bool:
        """Fetch the next frame; False when the server is connected but not streaming."""
        if not self._call("GetFrame", self._live.GetFrame):
            return False
        if self._warm_up_frame is not None:
            if self.frame_number() <= self._warm_up_frame:
                return False
            self._warm_up_frame = None
        return True

    def frame_number(self) -> int:
        return int(self._call("GetFrameNumber", self._live.GetFrameNumber))

    def frame_rate(self) -> float:
        return float(self._call("GetFrameRate", self._live.GetFrameRate))

    def latency(self) -> float:
        return float(self._call("GetLatencyTotal", self._live.GetLatencyTotal))

    # -- markers -------------------------------------------------------------------------
    def subject_names(self) -> list[str]:
        return list(self._call("GetSubjectNames", self._live.GetSubjectNames))

    def marker_names(self, subject: str) -> list[str]:
        pairs = self._call(f"GetMarkerNames({subject})", self._live.GetMarkerNames, subject)
        return [name for name, _parent in pairs]

    def marker_positions(self, subject: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(markers x 3 in millimetres, occluded flags) of the current frame."""
        positions = np.empty((len(names), 3))
        occluded = np.zeros(len(names), dtype=bool)
        get = self._live.GetMarkerGlobalTranslation
        for i, name in enumerate(names):
            (x, y, z), hidden = self._call(f"GetMarkerGlobalTranslation({name})", get,
                                           subject, name)
            positions[i] = (x, y, z)
            occluded[i] = bool(hidden)
        return positions, occluded

    # -- device outputs ------------------------------------------------------------------
    def device_names(self) -> list[str]:
        return [name for name, _type in self._call("GetDeviceNames", self._live.GetDeviceNames)]

    def device_outputs(self, device: str) -> list[tuple[str, str, str]]:
        """[(output, component, SI unit string)] of a device."""
        details = self._call(f"GetDeviceOutputDetails({device})",
                             self._live.GetDeviceOutputDetails, device)
        return [(output, component, UNIT_NAMES.get(getattr(unit, "name", str(unit)), ""))
                for output, component, unit in details]

    def device_values(self, device: str, output: str, component: str) -> tuple[list[float], bool]:
        values, occluded = self._call(f"GetDeviceOutputValues({device}, {output})",
                                      self._live.GetDeviceOutputValues, device, output,
                                      component)
        return list(values), bool(occluded)
