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

import numpy as np

# The class vicon_sdk_client raises, so that one `except DataStreamException` covers both.
from biosig_ros.devices.vicon_sdk_client import DataStreamException
from biosig_ros.errors import ConfigError
from biosig_ros.io.recording import RecordingSettings, read_recording

POLL_S = 0.02


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
    Reading is biosig_ros.io.recording's, in the SDK's millimetres.
    """
    is_c3d = str(path).lower().endswith(".c3d")
    with_analog = bool(analog_key) or (is_c3d and bool(analog_names))
    recording = read_recording(RecordingSettings(
        file=path, signal_key=analog_key, channel_names=list(analog_names or []),
        sample_rate=analog_rate, markers_key=markers_key, marker_names=list(marker_names),
        frame_rate=frame_rate, marker_unit=marker_unit, subject=subject))
    if recording.markers is None:
        raise ConfigError(f"{path}: the simulator needs markers and the recording has none")
    markers = recording.markers
    analog, rate, names = None, 0.0, ()
    if with_analog and recording.signal is not None:
        analog, rate = recording.signal.data, recording.signal.sample_rate
        names = tuple(analog_names or [f"{analog_device}{i + 1}" for i in range(analog.shape[1])])
    return MarkerRecording(markers.in_unit("mm"), markers.marker_names,
                           markers.frame_rate, subject, analog, rate, names, analog_device)


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
