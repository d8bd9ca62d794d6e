"""A Python client over Vicon's own DataStream SDK library (the C API, built by
tools/bootstrap.sh; see biosig_ros.devices.vicon_sdk_library), written here with ctypes.

It offers the calls of Vicon's Python wrapper `vicon_dssdk.ViconDataStream` that biosig_ros
uses, with the same names, arguments, return shapes, enums and exception class, so that
ViconAdapter drives either one unchanged:

    client = Client()                       # SdkNotBuilt if the library is missing
    client.Connect("127.0.0.1:801")         # blocks like the SDK's; DataStreamException
    client.EnableMarkerData(); client.SetStreamMode(Client.StreamMode.EServerPush)
    if client.GetFrame():                   # False: no new frame within the SDK's 1 s wait
        client.GetFrameNumber(); client.GetMarkerGlobalTranslation("subj", "M1")
"""
from __future__ import annotations

import ctypes
from enum import Enum

from biosig_ros.devices import vicon_sdk_library as lib
from biosig_ros.devices.vicon_sdk_library import SdkNotBuilt  # noqa: F401 - re-exported

NAME_BUFFER = 1024      # bytes for names copied out of the SDK (it truncates longer ones)


class DataStreamException(Exception):
    """A failed SDK call: str() is the result code name, then details (as vicon_dssdk's)."""

    def __init__(self, code: str, additional: str = ""):
        super().__init__(code)
        self.message = code
        self.additional = additional

    def __str__(self) -> str:
        return f"{self.message} {self.additional}" if self.additional else self.message


def _check(code: int, what: str = "") -> None:
    if code != lib.SUCCESS:
        raise DataStreamException(lib.result_name(code), what)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _name_buffer():
    return ctypes.create_string_buffer(NAME_BUFFER)


class Client:
    """One connection to a DataStream server through Vicon's library."""

    StreamMode = Enum("StreamMode", {f"E{name}": value
                                     for name, value in lib.STREAM_MODES.items()})
    DeviceType = Enum("DeviceType", {f"E{name}": value
                                     for value, name in enumerate(lib.DEVICE_TYPES)})
    # vicon_dssdk spells the unknown unit EUnitUnknown; the others are E + the C name.
    Unit = Enum("Unit", {("EUnitUnknown" if name == "UnknownUnit" else f"E{name}"): value
                         for value, name in enumerate(lib.UNIT_NAMES)})

    def __init__(self):
        self._lib = lib.load_library()
        self._handle = self._lib.Client_Create()
        if not self._handle:
            raise DataStreamException("UnknownResult", "Client_Create returned no client")

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.Client_Destroy(handle)

    def _get(self, function: str, out_type, *args):
        out = out_type()
        getattr(self._lib, function)(self._handle, *args, ctypes.byref(out))
        return out

    # -- connection ----------------------------------------------------------------------
    def GetVersion(self) -> tuple[int, int, int, int]:
        out = self._get("Client_GetVersion", lib.GetVersionOut)
        return out.Major, out.Minor, out.Point, out.Revision

    def Connect(self, hostname: str) -> None:
        """Connect to "host[:port]" (port 801 by default); blocks while the OS connects."""
        _check(self._lib.Client_Connect(self._handle, hostname.encode()), hostname)

    def IsConnected(self) -> bool:
        return bool(self._lib.Client_IsConnected(self._handle))

    def Disconnect(self) -> None:
        _check(self._lib.Client_Disconnect(self._handle))

    # -- set-up --------------------------------------------------------------------------
    def EnableMarkerData(self) -> None:
        _check(self._lib.Client_EnableMarkerData(self._handle))

    def EnableUnlabeledMarkerData(self) -> None:
        _check(self._lib.Client_EnableUnlabeledMarkerData(self._handle))

    def EnableSegmentData(self) -> None:
        _check(self._lib.Client_EnableSegmentData(self._handle))

    def EnableDeviceData(self) -> None:
        _check(self._lib.Client_EnableDeviceData(self._handle))

    def SetStreamMode(self, streamMode: "Client.StreamMode") -> None:
        if not isinstance(streamMode, Client.StreamMode):
            raise KeyError(streamMode)
        _check(self._lib.Client_SetStreamMode(self._handle, streamMode.value))

    def SetBufferSize(self, size: int) -> None:
        """Frames the SDK keeps for a reader that falls behind (the C API's own
        Client_SetBufferSize does not set it in 1.11: see vicon_sdk_library)."""
        self._lib.set_buffer_size(self._handle, max(1, int(size)))

    # -- frames --------------------------------------------------------------------------
    def GetFrame(self) -> bool:
        """True with a new frame; False when none came within the SDK's wait (1 s)."""
        code = self._lib.Client_GetFrame(self._handle)
        if code == lib.RESULT_NAMES.index("NoFrame"):
            return False
        _check(code)
        return True

    def GetFrameNumber(self) -> int:
        out = self._get("Client_GetFrameNumber", lib.FrameNumberOut)
        _check(out.Result)
        return int(out.FrameNumber)

    def GetFrameRate(self) -> float:
        out = self._get("Client_GetFrameRate", lib.FrameRateOut)
        _check(out.Result)
        return float(out.FrameRateHz)

    def GetLatencyTotal(self) -> float:
        out = self._get("Client_GetLatencyTotal", lib.LatencyTotalOut)
        _check(out.Result)
        return float(out.Total)

    # -- subjects and markers ------------------------------------------------------------
    def GetSubjectNames(self) -> list[str]:
        count = self._get("Client_GetSubjectCount", lib.CountOut)
        _check(count.Result)
        names = []
        for index in range(count.Count):
            buffer = _name_buffer()
            _check(self._lib.Client_GetSubjectName(self._handle, index, NAME_BUFFER, buffer))
            names.append(_text(buffer.value))
        return names

    def GetMarkerNames(self, subjectName: str) -> list[tuple[str, str]]:
        """[(marker, parent segment)] of a subject."""
        subject = subjectName.encode()
        count = self._get("Client_GetMarkerCount", lib.CountOut, subject)
        _check(count.Result, subjectName)
        pairs = []
        for index in range(count.Count):
            name, parent = _name_buffer(), _name_buffer()
            _check(self._lib.Client_GetMarkerName(self._handle, subject, index, NAME_BUFFER,
                                                  name), subjectName)
            _check(self._lib.Client_GetMarkerParentName(self._handle, subject, name.value,
                                                        NAME_BUFFER, parent), subjectName)
            pairs.append((_text(name.value), _text(parent.value)))
        return pairs

    def GetMarkerGlobalTranslation(self, subjectName: str, markerName: str
                                   ) -> tuple[tuple[float, float, float], bool]:
        """((x, y, z) millimetres, occluded); an occluded marker is at (0, 0, 0)."""
        out = self._get("Client_GetMarkerGlobalTranslation", lib.TranslationOut,
                        subjectName.encode(), markerName.encode())
        _check(out.Result, f"{subjectName}:{markerName}")
        x, y, z = out.Translation
        return (x, y, z), bool(out.Occluded)

    # -- devices -------------------------------------------------------------------------
    def GetDeviceNames(self) -> list[tuple[str, "Client.DeviceType"]]:
        count = self._get("Client_GetDeviceCount", lib.CountOut)
        _check(count.Result)
        devices = []
        for index in range(count.Count):
            name, kind = _name_buffer(), ctypes.c_int(0)
            _check(self._lib.Client_GetDeviceName(self._handle, index, NAME_BUFFER, name,
                                                  ctypes.byref(kind)))
            devices.append((_text(name.value), _enum(Client.DeviceType, kind.value,
                                                     Client.DeviceType.EUnknownDeviceType)))
        return devices

    def GetDeviceOutputDetails(self, deviceName: str) -> list[tuple[str, str, "Client.Unit"]]:
        """[(output, component, unit)] of a device, one entry per component."""
        device = deviceName.encode()
        count = self._get("Client_GetDeviceOutputCount", lib.CountOut, device)
        _check(count.Result, deviceName)
        details = []
        for index in range(count.Count):
            output, component, unit = _name_buffer(), _name_buffer(), ctypes.c_int(0)
            _check(self._lib.Client_GetDeviceOutputComponentName(
                self._handle, device, index, NAME_BUFFER, output, NAME_BUFFER, component,
                ctypes.byref(unit)), deviceName)
            details.append((_text(output.value), _text(component.value),
                            _enum(Client.Unit, unit.value, Client.Unit.EUnitUnknown)))
        return details

    def GetDeviceOutputValues(self, deviceName: str, deviceOutputName: str,
                              deviceComponentName: str) -> tuple[list[float], bool]:
        """(the frame's sub-samples of one output component, occluded)."""
        args = (deviceName.encode(), deviceOutputName.encode(), deviceComponentName.encode())
        what = f"{deviceName}/{deviceOutputName}/{deviceComponentName}"
        count = self._get("Client_GetDeviceOutputComponentSubsamples", lib.SubsamplesOut, *args)
        _check(count.Result, what)
        values, occluded = [], bool(count.Occluded)
        out = lib.ValueOut()
        read = self._lib.Client_GetDeviceOutputComponentValueForSubsample
        for index in range(count.Subsamples):
            read(self._handle, *args, index, ctypes.byref(out))
            _check(out.Result, what)
            values.append(out.Value)
            occluded = occluded or bool(out.Occluded)
        return values, occluded


def _enum(kind, value: int, default):
    try:
        return kind(value)
    except ValueError:
        return default
