"""Vicon marker stream (ROS-free): frames of one subject's markers in metres, with occlusion
flags, Vicon frame numbers and capture stamps, plus optional analog device outputs.

ViconClient is a DeviceLink: connect() connects the ViconAdapter, waits for a frame and resolves
subject / markers / device outputs; stream() delivers one MarkerFrame (and SignalChunk) per
frame in the link's thread; disconnect() disconnects. Vicon's frame numbers are the running
index: frames dropped (by the SDK or during a pause or outage) show as gaps and are counted.
The backend (Vicon's client library or the API stand-in) only changes how the adapter is built
(create_adapter).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from biosig_ros.devices.device_link import DeviceError, DeviceLink, LinkStatus
from biosig_ros.devices.stream_assembler import SampleClock
from biosig_ros.devices.vicon_adapter import STREAM_MODES, ViconAdapter
from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field, require_choice
from biosig_ros.signals import MarkerFrame, SignalChunk

BACKENDS = ("sdk", "simulator")
MM_PER_M = 1000.0


@dataclass
class ViconSettings:
    """Parameters of the Vicon client (and of the vicon_markers node)."""

    backend: str = doc_field("sdk", "sdk (Vicon's vicon_dssdk if importable, else Vicon's "
                                    "client library built by tools/bootstrap.sh) or simulator "
                                    "(API stand-in playing sim_recording in-process)")
    sdk_fallback: bool = doc_field(False, "backend sdk without any SDK client available: "
                                          "warn and run the simulator backend instead of "
                                          "exiting (for simulated graphs)")
    host: str = doc_field("localhost:801", "Vicon DataStream server, host[:port]")
    subject: str = doc_field("", "subject to publish (\"\" = the first streamed)")
    marker_names: list[str] = doc_field([], "markers to publish, in this order ([] = all)")
    stream_mode: str = doc_field("ServerPush", "ServerPush (lowest latency), ClientPull or "
                                               "ClientPullPreFetch")
    buffer_size: int = doc_field(50, "SDK frame buffer: frames a late node still takes in "
                                     "order instead of skipping (1 = always the newest frame)",
                                 range=(1, None))
    analog_device: str = doc_field("", "device whose outputs go to vicon/analog (\"\" = off)")
    analog_outputs: list[str] = doc_field([], "outputs of analog_device, in this order "
                                              "([] = all)")
    connect_timeout: float = doc_field(2.0, "s for the server to accept the connection",
                                       range=(0.0, None))
    frame_timeout: float = doc_field(1.0, "s without a new frame = server lost",
                                     range=(0.0, None))
    retry_interval: float = doc_field(1.0, "s between reconnection attempts (and autostart "
                                           "configure attempts)", range=(0.0, None))
    # Simulator backend: the recording it plays and the faults it injects.
    sim_recording: str = doc_field("data/abd.bio", "simulator: .bio or .c3d file to play "
                                                   "(looped, real time)")
    sim_markers_key: str = doc_field("markers", "simulator: .bio key of the markers "
                                                "(3 x markers x frames)")
    sim_marker_names: list[str] = doc_field([], "simulator: .bio marker names (.c3d: a "
                                                "selection)")
    sim_marker_unit: str = doc_field("mm", "simulator: unit of the .bio markers")
    sim_frame_rate: float = doc_field(100.0, "simulator: .bio frame rate (Hz)",
                                      range=(0.0, None))
    sim_subject: str = doc_field("subject", "simulator: subject name it streams")
    sim_analog_key: str = doc_field("", "simulator: .bio key of an analog device (channels x "
                                        "samples; \"\" = none)")
    sim_analog_rate: float = doc_field(2000.0, "simulator: analog rate (Hz)", range=(0.0, None))
    sim_analog_names: list[str] = doc_field([], "simulator: analog output names")
    sim_analog_device: str = doc_field("EMG", "simulator: analog device name")
    sim_occlusions: list[str] = doc_field([], "simulator: \"MARKER:FIRST:LAST\" recording "
                                              "frames where a marker is hidden")
    sim_outages: list[str] = doc_field([], "simulator: \"START_S:DURATION_S\": the server "
                                           "goes away and comes back")

    def __post_init__(self) -> None:
        require_choice("backend", self.backend, BACKENDS)
        if not self.host.strip():
            raise ConfigError("parameter 'host' must not be empty (e.g. 192.168.10.1:801)")
        require_choice("stream_mode", self.stream_mode, STREAM_MODES)
        if self.buffer_size < 1:
            raise ConfigError(f"parameter 'buffer_size' must be >= 1, got {self.buffer_size}")
        for name in ("marker_names", "analog_outputs"):
            values = getattr(self, name)
            if len(set(values)) != len(values) or any(not v.strip() for v in values):
                raise ConfigError(f"parameter '{name}' has empty or duplicate names: {values}")
        for name in ("connect_timeout", "frame_timeout", "retry_interval", "sim_frame_rate", "sim_analog_rate"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"parameter '{name}' must be > 0, got {getattr(self, name)}")
        self.occlusions = [_parse_occlusion(text) for text in self.sim_occlusions]
        self.outages = [_parse_outage(text) for text in self.sim_outages]


def _parse_occlusion(text: str) -> tuple[str, int, int]:
    parts = text.rsplit(":", 2)
    try:
        marker, first, last = parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        raise ConfigError(f"parameter 'sim_occlusions': expected MARKER:FIRST:LAST frames, "
                          f"got {text!r}") from None
    if not marker or first < 0 or last < first:
        raise ConfigError(f"parameter 'sim_occlusions': invalid range in {text!r}")
    return marker, first, last


def _parse_outage(text: str) -> tuple[float, float]:
    try:
        start, duration = (float(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"parameter 'sim_outages': expected START_S:DURATION_S, "
                          f"got {text!r}") from None
    if start < 0 or duration <= 0:
        raise ConfigError(f"parameter 'sim_outages': invalid outage {text!r}")
    return start, duration


def create_adapter(settings: ViconSettings, warn: Callable[[str], None] = print
                   ) -> ViconAdapter:
    """The adapter of the chosen backend (raises ConfigError if it cannot be built)."""
    if settings.backend == "sdk":
        try:
            return ViconAdapter.for_sdk()
        except ConfigError as error:
            if not settings.sdk_fallback:
                raise
            warn(f"{error} -> sdk_fallback: using the simulator backend (the API stand-in "
                 f"playing {settings.sim_recording})")
    from biosig_ros.devices.vicon_simulator import SimulatedServer, load_marker_recording

    recording = load_marker_recording(
        settings.sim_recording, settings.sim_marker_names, settings.sim_frame_rate,
        settings.sim_marker_unit, settings.sim_subject, settings.sim_markers_key,
        settings.sim_analog_key, settings.sim_analog_rate, settings.sim_analog_names,
        settings.sim_analog_device)
    return ViconAdapter.for_simulator(
        SimulatedServer(recording, settings.occlusions, settings.outages))


@dataclass
class AnalogLayout:
    device: str
    outputs: list[tuple[str, str]]          # (output, component) per channel
    names: list[str]
    unit: str


class ViconClient(DeviceLink):
    """Streams frames to on_frame (MarkerFrame, metres) and on_analog (SignalChunk)."""

    def __init__(self, settings: ViconSettings, adapter: ViconAdapter,
                 on_frame: Callable[[MarkerFrame], None],
                 on_analog: Callable[[SignalChunk], None] | None = None,
                 on_status: Callable[[LinkStatus], None] | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__("vicon-client", settings.retry_interval, on_status)
        self.settings = settings
        self.adapter = adapter
        self._on_frame = on_frame
        self._on_analog = on_analog
        self._clock = clock
        self.subject = ""
        self.marker_names: list[str] = []
        self.last_frame_number: int | None = None
        self.dropped_frames = 0         # frame numbers skipped between two frames received
        self._analog: AnalogLayout | None = None
        self._connected_at = 0.0

    def connect(self) -> str:
        """Connect, wait for a frame, resolve subject, markers and device outputs."""
        s = self.settings
        self._analog = None
        self._connected_at = self._clock()
        self.adapter.connect(s.host, s.stream_mode, s.buffer_size, self._analog_wanted,
                             s.connect_timeout)
        self._wait_for_first_frame()
        self.subject = self._resolve_subject()
        self.marker_names = self._resolve_markers()
        if self._analog_wanted:
            self._analog = self._resolve_analog()
        return (f"{len(self.marker_names)} markers of '{self.subject}' at "
                f"{self.adapter.frame_rate():g} Hz from {s.host}"
                + (f" and {len(self._analog.names)} outputs of '{self._analog.device}'"
                   if self._analog else ""))

    def stream(self) -> None:
        self.streaming(f"streaming {len(self.marker_names)} markers of '{self.subject}' from "
                       f"{self.settings.host}")
        self._stream(self._analog)

    def disconnect(self) -> None:
        self.adapter.disconnect()

    @property
    def _analog_wanted(self) -> bool:
        return bool(self.settings.analog_device) and self._on_analog is not None

    def _wait_for_first_frame(self) -> None:
        deadline = time.monotonic() + self.settings.frame_timeout
        while not self.adapter.next_frame():
            if time.monotonic() > deadline:
                raise DeviceError(f"connected to {self.settings.host} but no frame within "
                                  f"{self.settings.frame_timeout:g} s (is the system live?)")
            time.sleep(0.01)

    def _resolve_subject(self) -> str:
        subjects = self.adapter.subject_names()
        wanted = self.settings.subject
        if wanted and wanted not in subjects:
            raise DeviceError(f"subject '{wanted}' is not streamed (subjects: "
                              f"{', '.join(subjects) or 'none'})")
        if not subjects:
            raise DeviceError("no subject is streamed (is a subject enabled in Nexus/Tracker?)")
        return wanted or subjects[0]

    def _resolve_markers(self) -> list[str]:
        available = self.adapter.marker_names(self.subject)
        wanted = self.settings.marker_names
        missing = [name for name in wanted if name not in available]
        if missing:
            raise DeviceError(f"subject '{self.subject}' has no marker {', '.join(missing)} "
                              f"(markers: {', '.join(available)})")
        return list(wanted) or available

    def _resolve_analog(self) -> AnalogLayout:
        device = self.settings.analog_device
        devices = self.adapter.device_names()
        if device not in devices:
            raise DeviceError(f"device '{device}' is not streamed (devices: "
                              f"{', '.join(devices) or 'none'})")
        details = self.adapter.device_outputs(device)
        wanted = self.settings.analog_outputs
        missing = [o for o in wanted if o not in {output for output, _, _ in details}]
        if missing:
            raise DeviceError(f"device '{device}' has no output {', '.join(missing)}")
        if wanted:
            details = [d for name in wanted for d in details if d[0] == name]
        components = {}
        for output, _, _ in details:
            components[output] = components.get(output, 0) + 1
        names = [output if components[output] == 1 else f"{output}.{component}"
                 for output, component, _ in details]
        units = list(dict.fromkeys(unit for _, _, unit in details))
        return AnalogLayout(device, [(o, c) for o, c, _ in details], names, ",".join(units))

    def _stream(self, analog: AnalogLayout | None) -> None:
        adapter, s = self.adapter, self.settings
        last_new = time.monotonic()
        # Frames missed during an outage are dropped; during a pause (deactivated), they are not.
        previous = self.last_frame_number if self.after_loss else None
        clock: SampleClock | None = None
        # Frames captured before activation were buffered while inactive: skipped. After a
        # loss, connect() ran just before: the frames since it are the stream's, kept.
        started = self._connected_at if self.after_loss else self._clock()
        while not self.stop_requested():
            if not adapter.next_frame():
                if time.monotonic() - last_new > s.frame_timeout:
                    raise DeviceError(f"no frame for {s.frame_timeout:g} s (server not streaming)")
                time.sleep(0.005)
                continue
            arrival = self._clock()
            number = adapter.frame_number()
            if number == self.last_frame_number:
                if time.monotonic() - last_new > s.frame_timeout:
                    raise DeviceError(f"frame number stuck at {number} for {s.frame_timeout:g} s")
                continue
            latency = adapter.latency()
            rate = adapter.frame_rate()
            if arrival - latency < started - 0.5 / rate:
                continue        # buffered by the SDK while not streaming (before activation)
            if previous is not None and number > previous + 1:
                self.dropped_frames += number - previous - 1
            positions, occluded = adapter.marker_positions(self.subject, self.marker_names)
            # Vicon's frame numbers are its clock: frames delivered late (a stall, then a
            # burst) keep the capture times their numbers give, never later than arrival.
            if clock is None or clock.rate != rate or number < clock.base_index:
                clock = SampleClock(rate, number)
            clock.update(arrival - latency, number)
            stamp = clock.stamp(number)
            self._on_frame(MarkerFrame(positions / MM_PER_M, self.marker_names, number, stamp,
                                       rate, self.subject, occluded))
            if analog is not None:
                self._emit_analog(analog, number, stamp, rate)
            self.last_frame_number = previous = number
            last_new = time.monotonic()

    def _emit_analog(self, analog: AnalogLayout, number: int, stamp: float, rate: float) -> None:
        columns = []
        for output, component in analog.outputs:
            values, occluded = self.adapter.device_values(analog.device, output, component)
            column = np.asarray(values, dtype=float)
            if occluded:
                column[:] = np.nan
            columns.append(column)
        counts = {len(c) for c in columns}
        if len(counts) != 1 or 0 in counts:
            raise DeviceError(f"device '{analog.device}' outputs have unequal sub-sample counts "
                              f"{sorted(counts)}")
        (k,) = counts
        # Sub-samples of frame n are samples n*k .. n*k+k-1: Vicon frame numbers make the
        # running index, so dropped frames show as index gaps.
        self._on_analog(SignalChunk(np.column_stack(columns), number * k, stamp, rate * k,
                                    analog.names, analog.unit))
