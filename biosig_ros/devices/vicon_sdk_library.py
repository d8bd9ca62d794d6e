"""Finds and loads the Vicon DataStream SDK client library that tools/bootstrap.sh builds from
Vicon's published source (the C API, `ViconDataStreamSDK_C/CClient.h`), and declares the C
functions biosig_ros calls with their exact argument and result types (ctypes).

The build lives outside the repository: $BIOSIG_ROS_VICON_SDK (a directory with lib/ and bin/)
or, by default, ~/.cache/biosig_ros/vicon-sdk-1.11.0. Nothing here talks to a server; the
client over these functions is biosig_ros.devices.vicon_sdk_client.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

SDK_VERSION = "1.11.0"
ENV_VAR = "BIOSIG_ROS_VICON_SDK"
LIBRARY_NAME = "libViconDataStreamSDK_C.so"
SAMPLE_CLIENT_NAME = "ViconDataStreamSDK_CPPTest"
BUILD_HINT = (f"build it with tools/bootstrap.sh (or set {ENV_VAR} to a directory holding "
              f"lib/{LIBRARY_NAME})")

SUCCESS = 2     # CResult::Success (CTypeDefs.h)
# CResult, in CTypeDefs.h order: the names DataStreamException reports.
RESULT_NAMES = (
    "UnknownResult", "NotImplemented", "Success", "InvalidHostName", "InvalidMulticastIP",
    "ClientAlreadyConnected", "ClientConnectionFailed", "ServerAlreadyTransmittingMulticast",
    "ServerNotTransmittingMulticast", "NotConnected", "NoFrame", "InvalidIndex",
    "InvalidCameraName", "InvalidSubjectName", "InvalidSegmentName", "InvalidMarkerName",
    "InvalidDeviceName", "InvalidDeviceOutputName", "InvalidLatencySampleName", "CoLinearAxes",
    "LeftHandedAxes", "HapticAlreadySet", "EarlyDataRequested", "LateDataRequested",
    "InvalidOperation", "NotSupported", "ConfigurationFailed", "NotPresent")
# CUnit, in CTypeDefs.h order.
UNIT_NAMES = (
    "UnknownUnit", "Volt", "Newton", "NewtonMeter", "Meter", "Kilogram", "Second", "Ampere",
    "Kelvin", "Mole", "Candela", "Radian", "Steradian", "MeterSquared", "MeterCubed",
    "MeterPerSecond", "MeterPerSecondSquared", "RadianPerSecond", "RadianPerSecondSquared",
    "Hertz", "Joule", "Watt", "Pascal", "Lumen", "Lux", "Coulomb", "Ohm", "Farad", "Weber",
    "Tesla", "Henry", "Siemens", "Becquerel", "Gray", "Sievert", "Katal")
STREAM_MODES = {"ClientPull": 0, "ClientPullPreFetch": 1, "ServerPush": 2}   # CStreamMode
DEVICE_TYPES = ("UnknownDeviceType", "ForcePlate", "EyeTracker")             # CDeviceType


class SdkNotBuilt(RuntimeError):
    """The library is absent or does not load; the message says how to build it."""


def result_name(code: int) -> str:
    return RESULT_NAMES[code] if 0 <= code < len(RESULT_NAMES) else f"Result{code}"


def build_dir() -> Path:
    """Where the build is (the directory holding lib/ and bin/)."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "biosig_ros" / f"vicon-sdk-{SDK_VERSION}"


def library_path() -> Path:
    return build_dir() / "lib" / LIBRARY_NAME


def sample_client_path() -> Path:
    """Vicon's sample client program, built from the same source."""
    return build_dir() / "bin" / SAMPLE_CLIENT_NAME


# Output structures: CTypeDefs.h packs them (#pragma pack(1)).
class _Packed(ctypes.Structure):
    _pack_ = 1


def _struct(name: str, *fields) -> type:
    return type(name, (_Packed,), {"_fields_": list(fields)})


_RESULT = ("Result", ctypes.c_int)
GetVersionOut = _struct("GetVersionOut", ("Major", ctypes.c_uint), ("Minor", ctypes.c_uint),
                        ("Point", ctypes.c_uint), ("Revision", ctypes.c_uint))
FrameNumberOut = _struct("FrameNumberOut", _RESULT, ("FrameNumber", ctypes.c_uint))
FrameRateOut = _struct("FrameRateOut", _RESULT, ("FrameRateHz", ctypes.c_double))
LatencyTotalOut = _struct("LatencyTotalOut", _RESULT, ("Total", ctypes.c_double))
CountOut = _struct("CountOut", _RESULT, ("Count", ctypes.c_uint))
TranslationOut = _struct("TranslationOut", _RESULT, ("Translation", ctypes.c_double * 3),
                         ("Occluded", ctypes.c_int))
ValueOut = _struct("ValueOut", _RESULT, ("Value", ctypes.c_double), ("Occluded", ctypes.c_int))
SubsamplesOut = _struct("SubsamplesOut", _RESULT, ("Subsamples", ctypes.c_uint),
                        ("Occluded", ctypes.c_int))

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_U = ctypes.c_uint
_I = ctypes.c_int
_BUF = ctypes.c_char_p      # char* out-buffers: passed as ctypes.create_string_buffer
_IP = ctypes.POINTER(ctypes.c_int)
_OUT = ctypes.c_void_p      # pointers to the output structures above (ctypes.byref)

# name: (result type, argument types), as declared in CClient.h.
PROTOTYPES = {
    "Client_Create": (_P, ()),
    "Client_Destroy": (None, (_P,)),
    "Client_GetVersion": (None, (_P, _OUT)),
    "Client_Connect": (_I, (_P, _S)),
    "Client_Disconnect": (_I, (_P,)),
    "Client_IsConnected": (_I, (_P,)),
    "Client_EnableMarkerData": (_I, (_P,)),
    "Client_EnableUnlabeledMarkerData": (_I, (_P,)),
    "Client_EnableSegmentData": (_I, (_P,)),
    "Client_EnableDeviceData": (_I, (_P,)),
    "Client_SetStreamMode": (_I, (_P, _I)),
    "Client_GetFrame": (_I, (_P,)),
    "Client_GetFrameNumber": (None, (_P, _OUT)),
    "Client_GetFrameRate": (None, (_P, _OUT)),
    "Client_GetLatencyTotal": (None, (_P, _OUT)),
    "Client_GetSubjectCount": (None, (_P, _OUT)),
    "Client_GetSubjectName": (_I, (_P, _U, _I, _BUF)),
    "Client_GetMarkerCount": (None, (_P, _S, _OUT)),
    "Client_GetMarkerName": (_I, (_P, _S, _U, _I, _BUF)),
    "Client_GetMarkerParentName": (_I, (_P, _S, _S, _I, _BUF)),
    "Client_GetMarkerGlobalTranslation": (None, (_P, _S, _S, _OUT)),
    "Client_GetDeviceCount": (None, (_P, _OUT)),
    "Client_GetDeviceName": (_I, (_P, _U, _I, _BUF, _IP)),
    "Client_GetDeviceOutputCount": (None, (_P, _S, _OUT)),
    "Client_GetDeviceOutputComponentName": (_I, (_P, _S, _U, _I, _BUF, _I, _BUF, _IP)),
    "Client_GetDeviceOutputComponentSubsamples": (None, (_P, _S, _S, _S, _OUT)),
    "Client_GetDeviceOutputComponentValueForSubsample": (None, (_P, _S, _S, _S, _U, _OUT)),
}

# Vicon's C API 1.11 Client_SetBufferSize calls DisableDebugData() instead (CClient.cpp): the
# build adds BiosigRos_Client_SetBufferSize (tools/vicon_sdk/buffer_size_fix.cpp); a build from
# before it still exports the C++ method, which takes the C API's client handle as `this`.
SET_BUFFER_SIZE_SYMBOLS = ("BiosigRos_Client_SetBufferSize",
                           "_ZN18ViconDataStreamSDK3CPP6Client13SetBufferSizeEj")

_loaded: dict[Path, ctypes.CDLL] = {}


def buffer_size_setter(library: ctypes.CDLL):
    """The function that really sets a client's frame buffer (client, frames) -> None."""
    for name in SET_BUFFER_SIZE_SYMBOLS:
        try:
            function = getattr(library, name)
        except AttributeError:
            continue
        function.restype = None
        function.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        return function
    raise SdkNotBuilt(f"the Vicon DataStream SDK library {library_path()} has no working "
                      f"SetBufferSize: rebuild it with tools/bootstrap.sh")


def load_library() -> ctypes.CDLL:
    """The SDK's C library with its prototypes declared (loaded once per path); SdkNotBuilt
    if it is absent."""
    path = library_path()
    if path in _loaded:
        return _loaded[path]
    if not path.is_file():
        raise SdkNotBuilt(f"the Vicon DataStream SDK library is not built ({path} is missing): "
                          f"{BUILD_HINT}")
    try:
        library = ctypes.CDLL(str(path))
        for name, (restype, argtypes) in PROTOTYPES.items():
            function = getattr(library, name)
            function.restype = restype
            function.argtypes = list(argtypes)
        library.set_buffer_size = buffer_size_setter(library)
    except (OSError, AttributeError) as error:
        raise SdkNotBuilt(f"the Vicon DataStream SDK library {path} does not load ({error}): "
                          f"rebuild it with tools/bootstrap.sh") from error
    _loaded[path] = library
    return library
