"""A stand-in for `vicon_dssdk.ViconDataStream`: the same Client methods, arguments and return
shapes (the subset biosig_ros uses), and the same exception class name, fed by a recording.

A SimulatedServer plays a recording in real time: frame numbers follow the wall clock from the
server's start (so they jump over an outage, like a Vicon system that kept capturing), the
recording loops, positions are in millimetres and an occluded marker comes back as
((0.0, 0.0, 0.0), True). It can hide markers over frame ranges and go down (scheduled outages,
or go_down()/come_back() from a test), which disconnects its clients.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError

LENGTH_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
POLL_S = 0.02


class DataStreamException(Exception):
    """Same name and str() as the SDK's: the result code name, then details."""

    def __init__(self, code: str, additional: str = ""):
        super().__init__(code)
        self.message = code
        self.additional = additional

    def __str__(self) -> str:
        return f"{self.message} {self.additional}" if self.additional else self.message


@dataclass
class MarkerRecording:
    """What the simulated server streams. positions_mm: frames x markers x 3, NaN = occluded;
    analog: samples x channels at analog_rate (optional), shown as one device."""

    positions_mm: np.ndarray
    marker_names: list[str]
    frame_rate: float
    subject: str
    analog: np.ndarray | None = None
    analog_rate: float = 0.0
    analog_names: tuple[str, ...] = ()
    analog_device: str = "EMG"

    def __post_init__(self):
        if self.positions_mm.ndim != 3 or self.positions_mm.shape[2] != 3 \
                or self.positions_mm.shape[0] == 0:
            raise ConfigError(f"marker positions must be frames x markers x 3, "
                              f"got {self.positions_mm.shape}")
        if len(self.marker_names) != self.positions_mm.shape[1]:
            raise ConfigError(f"the recording has {self.positions_mm.shape[1]} markers but "
                              f"{len(self.marker_names)} marker names were given")
        if self.analog is not None:
            per_frame = self.analog_rate / self.frame_rate
            if abs(per_frame - round(per_frame)) > 1e-9 or per_frame < 1:
                raise ConfigError(f"analog rate {self.analog_rate} Hz must be a multiple of the "
                                  f"frame rate {self.frame_rate} Hz")
            if len(self.analog_names) != self.analog.shape[1]:
                raise ConfigError(f"the recording has {self.analog.shape[1]} analog channels "
                                  f"but {len(self.analog_names)} names were given")

    @property
    def subsamples(self) -> int:
        return int(round(self.analog_rate / self.frame_rate)) if self.analog is not None else 0


def load_marker_recording(path: str, marker_names: list[str], frame_rate: float = 100.0,
                          marker_unit: str = "mm", subject: str = "subject",
                          markers_key: str = "markers", analog_key: str = "",
                          analog_rate: float = 2000.0, analog_names: list[str] | None = None,
                          analog_device: str = "EMG") -> MarkerRecording:
    """Markers (and optionally analog channels) of a .bio or .c3d file, in millimetres.

    .bio: markers_key is 3 x markers x frames in marker_unit, names and rates from the
    arguments. .c3d: names, rates and units from the file; marker_names / analog_names select.
    """
    from biosig_ros.paths import resolve_data_path

    resolved = resolve_data_path(path)
    if not resolved.is_file():
        raise ConfigError(f"simulator recording not found: {path}")
    if resolved.suffix.lower() == ".c3d":
        return _load_c3d(resolved, marker_names, subject, bool(analog_key) or bool(analog_names),
                         analog_names or [], analog_device)
    if resolved.suffix.lower() != ".bio":
        raise ConfigError(f"{path}: the simulator reads .bio or .c3d files")
    from biosig_ros.io.bio_file import load_bio

    content = load_bio(resolved)
    if markers_key not in content:
        raise ConfigError(f"{path}: no key '{markers_key}' (keys: {', '.join(map(str, content))})")
    if marker_unit not in LENGTH_TO_MM:
        raise ConfigError(f"marker unit must be one of {sorted(LENGTH_TO_MM)}, got {marker_unit!r}")
    markers = np.asarray(content[markers_key], dtype=float)
    if markers.ndim != 3 or markers.shape[0] != 3:
        raise ConfigError(f"{path}: '{markers_key}' must be 3 x markers x frames, got {markers.shape}")
    names = list(marker_names) or [f"marker_{i + 1}" for i in range(markers.shape[1])]
    positions = np.transpose(markers, (2, 1, 0)) * LENGTH_TO_MM[marker_unit]
    analog = None
    if analog_key:
        if analog_key not in content:
            raise ConfigError(f"{path}: no key '{analog_key}' for the analog device")
        analog = np.ascontiguousarray(np.asarray(content[analog_key], dtype=float).T)
        analog_names = list(analog_names or [f"{analog_device}{i + 1}"
                                             for i in range(analog.shape[1])])
    return MarkerRecording(positions, names, frame_rate, subject, analog, analog_rate,
                           tuple(analog_names or ()), analog_device)


def _load_c3d(path: Path, marker_names: list[str], subject: str, with_analog: bool,
              analog_names: list[str], analog_device: str) -> MarkerRecording:
    import ezc3d

    try:
        c3d = ezc3d.c3d(str(path))
    except Exception as error:  # noqa: BLE001 - ezc3d raises bare RuntimeError
        raise ConfigError(f"{path}: not a readable .c3d file: {error}") from error
    point = c3d["parameters"]["POINT"]
    labels = [name.strip() for name in point["LABELS"]["value"]]
    index = _select(labels, marker_names, "marker", path)
    unit = (str((list(point.get("UNITS", {}).get("value", [])) or ["mm"])[0]).strip().lower()
            or "mm")
    if unit not in LENGTH_TO_MM:
        raise ConfigError(f"{path}: unsupported POINT:UNITS {unit!r}")
    points = np.asarray(c3d["data"]["points"], dtype=float)[:3, index, :]
    positions = np.transpose(points, (2, 1, 0)) * LENGTH_TO_MM[unit]
    residuals = c3d["data"].get("meta_points", {}).get("residuals")
    if residuals is not None and np.size(residuals):
        positions[np.transpose(np.asarray(residuals)[0, index, :]) < 0] = np.nan
    analog = None
    rate = 0.0
    names: list[str] = []
    if with_analog:
        analog_labels = [n.strip() for n in c3d["parameters"]["ANALOG"]["LABELS"]["value"]]
        a_index = _select(analog_labels, analog_names, "analog channel", path)
        analog = np.ascontiguousarray(np.asarray(c3d["data"]["analogs"], dtype=float)[0][a_index].T)
        rate = float(c3d["parameters"]["ANALOG"]["RATE"]["value"][0])
        names = [analog_labels[i] for i in a_index]
    return MarkerRecording(positions, [labels[i] for i in index],
                           float(point["RATE"]["value"][0]), subject, analog, rate, tuple(names),
                           analog_device)


def _select(names: list[str], wanted: list[str], what: str, path: Path) -> list[int]:
    if not wanted:
        return list(range(len(names)))
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ConfigError(f"{path}: no {what} named {', '.join(missing)} "
                          f"(available: {', '.join(names)})")
    return [names.index(n) for n in wanted]


class SimulatedServer:
    """A Vicon DataStream server playing a MarkerRecording in real time (looped).

    occlusions: (marker, first, last) recording frame indices (inclusive) where the marker is
    not seen. outages: (start, duration) in seconds after the server started, during which it
    is unreachable and its clients are disconnected.
    """

    def __init__(self, recording: MarkerRecording, occlusions=(), outages=(),
                 first_frame_number: int = 1, clock=time.monotonic):
        self.recording = recording
        self.first_frame_number = first_frame_number
        self._clock = clock
        self.t0 = clock()
        self._lock = threading.Lock()
        self._outages = sorted([self.t0 + start, self.t0 + start + duration]
                               for start, duration in outages)
        self._hidden = np.zeros(recording.positions_mm.shape[:2], dtype=bool)
        for marker, first, last in occlusions:
            if marker not in recording.marker_names:
                raise ConfigError(f"occlusion of unknown marker {marker!r} "
                                  f"(markers: {', '.join(recording.marker_names)})")
            self._hidden[first:last + 1, recording.marker_names.index(marker)] = True

    # -- time ----------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    def frame_at(self, t: float) -> int:
        return self.first_frame_number + int(math.floor((t - self.t0) * self.recording.frame_rate))

    def frame_time(self, frame_number: int) -> float:
        return self.t0 + (frame_number - self.first_frame_number) / self.recording.frame_rate

    def recording_frame(self, frame_number: int) -> int:
        return (frame_number - self.first_frame_number) % self.recording.positions_mm.shape[0]

    # -- availability --------------------------------------------------------------------
    def go_down(self) -> None:
        with self._lock:
            self._outages.append([self.now(), math.inf])

    def come_back(self) -> None:
        with self._lock:
            now = self.now()
            for outage in self._outages:
                if outage[0] <= now < outage[1]:
                    outage[1] = now

    def is_up(self, t: float) -> bool:
        with self._lock:
            return not any(start <= t < end for start, end in self._outages)

    def outages_begun(self, t: float) -> int:
        """How many outages began by t: a connection made before the latest one is dead."""
        with self._lock:
            return sum(1 for start, _ in self._outages if start <= t)

    # -- data ----------------------------------------------------------------------------
    def marker(self, frame_number: int, index: int) -> tuple[tuple[float, float, float], bool]:
        row = self.recording_frame(frame_number)
        position = self.recording.positions_mm[row, index]
        if self._hidden[row, index] or not np.all(np.isfinite(position)) or not position.any():
            return (0.0, 0.0, 0.0), True
        return (float(position[0]), float(position[1]), float(position[2])), False

    def analog(self, frame_number: int, channel: int) -> list[float]:
        k = self.recording.subsamples
        start = self.recording_frame(frame_number) * k
        data = self.recording.analog
        rows = np.arange(start, start + k) % data.shape[0]
        return [float(v) for v in data[rows, channel]]


class Client:
    """The SDK Client's interface over a SimulatedServer (construct with the server)."""

    class StreamMode(Enum):
        EClientPull = 0
        EClientPullPreFetch = 1
        EServerPush = 2

    class DeviceType(Enum):
        EUnknownDevice = 0
        EForceplate = 1
        EEyeTracker = 2

    class Unit(Enum):
        EUnitUnknown = 0
        EVolt = 1

    class AxisMapping(Enum):
        EUp = 0
        EDown = 1
        ELeft = 2
        ERight = 3
        EForward = 4
        EBackward = 5

    def __init__(self, server: SimulatedServer):
        self._server = server
        self._connected_epoch: int | None = None
        self._frame: int | None = None
        self._received_at = 0.0
        self._buffer_size = 1
        self._marker_data = False
        self._device_data = False
        self.stream_mode = Client.StreamMode.EClientPull

    def GetVersion(self):
        return (1, 12, 0)

    # -- connection ----------------------------------------------------------------------
    def Connect(self, hostname):
        if not isinstance(hostname, str) or not hostname.strip():
            raise DataStreamException("InvalidHostName")
        if self.IsConnected():
            raise DataStreamException("ClientAlreadyConnected")
        now = self._server.now()
        if not self._server.is_up(now):
            raise DataStreamException("ClientConnectionFailed", hostname)
        self._connected_epoch = self._server.outages_begun(now)
        self._frame = None

    def IsConnected(self):
        if self._connected_epoch is None:
            return False
        now = self._server.now()
        if self._server.outages_begun(now) != self._connected_epoch or not self._server.is_up(now):
            self._connected_epoch = None
            return False
        return True

    def Disconnect(self):
        if not self.IsConnected():
            raise DataStreamException("NotConnected")
        self._connected_epoch = None

    def _require_connection(self):
        if not self.IsConnected():
            raise DataStreamException("NotConnected")

    # -- set-up --------------------------------------------------------------------------
    def EnableMarkerData(self):
        self._require_connection()
        self._marker_data = True

    def EnableUnlabeledMarkerData(self):
        self._require_connection()

    def EnableSegmentData(self):
        self._require_connection()

    def EnableDeviceData(self):
        self._require_connection()
        self._device_data = True

    def IsMarkerDataEnabled(self):
        return self._marker_data

    def IsDeviceDataEnabled(self):
        return self._device_data

    def SetStreamMode(self, streamMode):
        self._require_connection()
        if not isinstance(streamMode, Client.StreamMode):
            raise KeyError(streamMode)      # the SDK's dict lookup fails the same way
        self.stream_mode = streamMode

    def SetBufferSize(self, size):
        self._buffer_size = max(1, int(size))

    def SetAxisMapping(self, xAxis, yAxis, zAxis):
        if (xAxis, yAxis, zAxis) != (Client.AxisMapping.EForward, Client.AxisMapping.ELeft,
                                     Client.AxisMapping.EUp):
            raise DataStreamException("NotSupported", "the simulator streams Z-up only")

    # -- frames --------------------------------------------------------------------------
    def GetFrame(self):
        """Blocks until a frame newer than the last one exists, then takes it (the newest, or
        the next in sequence when SetBufferSize(n) covers the backlog)."""
        self._require_connection()
        server = self._server
        while True:
            newest = server.frame_at(server.now())
            if self._frame is None or newest > self._frame:
                break
            time.sleep(min(POLL_S, max(0.0, server.frame_time(self._frame + 1) - server.now())))
            self._require_connection()
        if self._frame is not None and newest - self._frame <= self._buffer_size:
            self._frame += 1
        else:
            self._frame = newest
        self._received_at = server.now()
        return True

    def _require_frame(self):
        self._require_connection()
        if self._frame is None:
            raise DataStreamException("NoFrame")

    def GetFrameNumber(self):
        self._require_frame()
        return self._frame

    def GetFrameRate(self):
        self._require_frame()
        return float(self._server.recording.frame_rate)

    def GetLatencyTotal(self):
        """Seconds from the frame's capture (its nominal time) to its delivery by GetFrame."""
        self._require_frame()
        return max(0.0, self._received_at - self._server.frame_time(self._frame))

    # -- subjects and markers ------------------------------------------------------------
    def GetSubjectNames(self):
        self._require_frame()
        return [self._server.recording.subject] if self._marker_data else []

    def _check_subject(self, subjectName):
        self._require_frame()
        if not self._marker_data or subjectName != self._server.recording.subject:
            raise DataStreamException("InvalidSubjectName", subjectName)

    def GetMarkerNames(self, subjectName):
        self._check_subject(subjectName)
        return [(name, subjectName) for name in self._server.recording.marker_names]

    def GetMarkerGlobalTranslation(self, subjectName, markerName):
        self._check_subject(subjectName)
        try:
            index = self._server.recording.marker_names.index(markerName)
        except ValueError:
            raise DataStreamException("InvalidMarkerName", markerName) from None
        return self._server.marker(self._frame, index)

    # -- devices -------------------------------------------------------------------------
    def GetDeviceNames(self):
        self._require_frame()
        recording = self._server.recording
        if not self._device_data or recording.analog is None:
            return []
        return [(recording.analog_device, Client.DeviceType.EUnknownDevice)]

    def _check_device(self, deviceName):
        self._require_frame()
        recording = self._server.recording
        if not self._device_data or recording.analog is None or \
                deviceName != recording.analog_device:
            raise DataStreamException("InvalidDeviceName", deviceName)

    def GetDeviceOutputDetails(self, deviceName):
        self._check_device(deviceName)
        return [(name, "EMG", Client.Unit.EVolt) for name in self._server.recording.analog_names]

    def GetDeviceOutputValues(self, deviceName, deviceOutputName, deviceComponentName):
        self._check_device(deviceName)
        names = self._server.recording.analog_names
        if deviceOutputName not in names or deviceComponentName != "EMG":
            raise DataStreamException("InvalidDeviceOutputName",
                                      f"{deviceOutputName}/{deviceComponentName}")
        return self._server.analog(self._frame, names.index(deviceOutputName)), False
