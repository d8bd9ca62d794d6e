"""The one place that talks to the Vicon DataStream SDK (`vicon_dssdk.ViconDataStream`) or to
its simulator twin (biosig_ros.devices.vicon_simulator): same calls, same return shapes.

Everything above this adapter (ViconClient, the node) is identical for both backends. SDK
errors become DeviceError (the link retries); a missing SDK is a ConfigError saying what to
install, unless the simulator backend is chosen.
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from biosig_ros.devices.device_link import DeviceError
from biosig_ros.errors import ConfigError

SDK_MODULE = "vicon_dssdk.ViconDataStream"
INSTALL_HINT = (
    "the Vicon DataStream SDK Python client (vicon_dssdk) is not importable. Install it from "
    "Vicon's DataStream SDK (download from vicon.com; in the SDK folder run "
    "`python -m pip install <SDK>/Win64/Python/vicon_dssdk` or the Linux equivalent, into the "
    "same Python as ROS 2), or set the parameter backend: simulator to use the recording-fed "
    "simulator")
STREAM_MODES = ("ServerPush", "ClientPull", "ClientPullPreFetch")
# SDK unit enum member names -> SI unit strings on topics.
UNIT_NAMES = {"EVolt": "V", "ENewton": "N", "ENewtonMeter": "N.m", "EMeter": "m",
              "EKilogram": "kg", "ESecond": "s", "EAmpere": "A", "EMeterPerSecond": "m/s",
              "EMeterPerSecondSquared": "m/s^2", "ERadianPerSecond": "rad/s",
              "ERadianPerSecondSquared": "rad/s^2", "EHertz": "Hz", "EJoule": "J", "EWatt": "W",
              "EPascal": "Pa", "ETesla": "T", "EUnitUnknown": ""}


def load_sdk():
    """The vicon_dssdk.ViconDataStream module, or ConfigError with installation advice."""
    try:
        return importlib.import_module(SDK_MODULE)
    except ImportError as error:
        raise ConfigError(f"{INSTALL_HINT} ({error})") from error


class ViconAdapter:
    """Thin wrapper over one SDK-like Client. module provides Client and DataStreamException."""

    def __init__(self, module, client):
        self._module = module
        self._client = client
        self._errors = (module.DataStreamException,)

    @classmethod
    def for_sdk(cls) -> "ViconAdapter":
        module = load_sdk()
        return cls(module, module.Client())

    @classmethod
    def for_simulator(cls, server) -> "ViconAdapter":
        from biosig_ros.devices import vicon_simulator

        return cls(vicon_simulator, vicon_simulator.Client(server))

    def _call(self, what: str, method: Callable, *args):
        try:
            return method(*args)
        except self._errors as error:
            raise DeviceError(f"Vicon {what}: {error}") from error

    # -- connection ----------------------------------------------------------------------
    def connect(self, host: str, stream_mode: str, buffer_size: int, devices: bool) -> None:
        """Connect and enable what the node reads (markers, optionally device outputs)."""
        c = self._client
        self._call(f"connect to {host}", c.Connect, host)
        self._call("EnableMarkerData", c.EnableMarkerData)
        if devices:
            self._call("EnableDeviceData", c.EnableDeviceData)
        mode = getattr(self._module.Client.StreamMode, f"E{stream_mode}")
        self._call("SetStreamMode", c.SetStreamMode, mode)
        if buffer_size > 1:
            self._call("SetBufferSize", c.SetBufferSize, buffer_size)

    def is_connected(self) -> bool:
        try:
            return bool(self._client.IsConnected())
        except self._errors:
            return False

    def disconnect(self) -> None:
        try:
            self._client.Disconnect()
        except self._errors:
            pass

    # -- frames --------------------------------------------------------------------------
    def next_frame(self) -> bool:
        """Fetch the next frame; False when the server is connected but not streaming."""
        return bool(self._call("GetFrame", self._client.GetFrame))

    def frame_number(self) -> int:
        return int(self._call("GetFrameNumber", self._client.GetFrameNumber))

    def frame_rate(self) -> float:
        return float(self._call("GetFrameRate", self._client.GetFrameRate))

    def latency(self) -> float:
        return float(self._call("GetLatencyTotal", self._client.GetLatencyTotal))

    # -- markers -------------------------------------------------------------------------
    def subject_names(self) -> list[str]:
        return list(self._call("GetSubjectNames", self._client.GetSubjectNames))

    def marker_names(self, subject: str) -> list[str]:
        pairs = self._call(f"GetMarkerNames({subject})", self._client.GetMarkerNames, subject)
        return [name for name, _parent in pairs]

    def marker_positions(self, subject: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(markers x 3 in millimetres, occluded flags) of the current frame."""
        positions = np.empty((len(names), 3))
        occluded = np.zeros(len(names), dtype=bool)
        get = self._client.GetMarkerGlobalTranslation
        for i, name in enumerate(names):
            (x, y, z), hidden = self._call(f"GetMarkerGlobalTranslation({name})", get,
                                           subject, name)
            positions[i] = (x, y, z)
            occluded[i] = bool(hidden)
        return positions, occluded

    # -- device outputs ------------------------------------------------------------------
    def device_names(self) -> list[str]:
        return [name for name, _type in self._call("GetDeviceNames", self._client.GetDeviceNames)]

    def device_outputs(self, device: str) -> list[tuple[str, str, str]]:
        """[(output, component, SI unit string)] of a device."""
        details = self._call(f"GetDeviceOutputDetails({device})",
                             self._client.GetDeviceOutputDetails, device)
        return [(output, component, UNIT_NAMES.get(getattr(unit, "name", str(unit)), ""))
                for output, component, unit in details]

    def device_values(self, device: str, output: str, component: str) -> tuple[list[float], bool]:
        values, occluded = self._call(f"GetDeviceOutputValues({device}, {output})",
                                      self._client.GetDeviceOutputValues, device, output,
                                      component)
        return list(values), bool(occluded)
