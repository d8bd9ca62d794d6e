"""A Trigno Control Utility client: command port, EMG data port, optional aux port (ROS-free).

TrignoClient is a DeviceLink: connect() reads the banner, configures and queries the TCU (rate,
paired slots) on the command port; stream() opens the data ports, sends START and turns the rows
into SignalChunks of the selected slots, handed to callbacks, in the link's thread;
stop_streaming() sends STOP; disconnect() QUIT. When the TCU goes away the link reports the
loss, retries and resumes; the running sample index then jumps by the samples the outage (or a
pause) cost, so consumers see the gap. No dependency on pytrigno.
"""
from __future__ import annotations

import math
import selectors
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from biosig_ros.devices import trigno_protocol as tp
from biosig_ros.devices.device_link import (STREAMING, DeviceError, DeviceLink, LinkStatus,
                                            close_socket)
from biosig_ros.devices.stream_assembler import RATE_TOLERANCE_HZ, StreamAssembler
from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field
from biosig_ros.signals import SignalChunk

STANDARD_GRAVITY = 9.80665
# Aux layouts per slot, as the TCU sends them.
AUX_LAYOUT_LEGACY = ["acc_x", "acc_y", "acc_z"]
AUX_LAYOUT_AVANTI = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z",
                     "mag_x", "mag_y", "mag_z"]
# Device unit -> SI factor and unit, by component prefix (acc in g, gyro in deg/s, mag in uT).
AUX_SI = {"acc": (STANDARD_GRAVITY, "m/s^2"), "gyro": (math.pi / 180.0, "rad/s"),
          "mag": (1e-6, "T")}


@dataclass
class TrignoSettings:
    """Parameters of the Trigno client (and of the trigno_emg node)."""

    host: str = doc_field("127.0.0.1", "address of the PC running the Trigno Control Utility")
    command_port: int = doc_field(tp.COMMAND_PORT, "TCU command port", range=(1, 65535))
    emg_port: int = doc_field(0, "EMG data port; 0 = 50043 (Avanti) or 50041 (legacy)",
                              range=(0, 65535))
    aux_port: int = doc_field(0, "aux data port; 0 = 50044 (Avanti) or 50042 (legacy)",
                              range=(0, 65535))
    legacy: bool = doc_field(False, "BACKWARDS COMPATIBILITY ON: legacy ports, 48-float aux "
                                    "rows (accelerometers only)")
    sensor_slots: list[int] = doc_field(list(range(1, tp.SLOTS + 1)),
                                        "TCU slots (1-16) to publish, in this order")
    channel_names: list[str] = doc_field([], "one name per selected slot ([] = EMG<slot>)")
    expected_rate: float = doc_field(2000.0, "Hz the TCU must report at configure (0 accepts "
                                             "any)", range=(0.0, None))
    upsample: bool = doc_field(True, "UPSAMPLE ON (27 samples per 13.5 ms frame = 2000 Hz) or "
                                     "OFF (1925.926 Hz)")
    configure_device: bool = doc_field(True, "send BACKWARDS COMPATIBILITY / UPSAMPLE / ENDIAN "
                                             "at connection")
    big_endian: bool = doc_field(False, "ENDIAN BIG")
    publish_rate: float = doc_field(100.0, "chunks per second on emg/raw (0 = one per device "
                                           "frame); changes at once, indices stay continuous",
                                    range=(0.0, None), runtime=True)
    aux_enabled: bool = doc_field(False, "also publish the aux/IMU port on emg/aux (SI units)")
    aux_slots: list[int] = doc_field([], "slots whose aux channels are published ([] = "
                                         "sensor_slots)")
    aux_components: list[str] = doc_field([], "subset of acc_x..acc_z (legacy) or acc_*, "
                                              "gyro_*, mag_* (Avanti); [] = the whole layout")
    connect_timeout: float = doc_field(2.0, "s per connection attempt and per command reply",
                                       range=(0.0, None))
    data_timeout: float = doc_field(
        1.0, "s without EMG data while streaming = device lost, unless the TCU still answers "
        "on its command port (a stall: see stall_timeout)", range=(0.0, None))
    stall_timeout: float = doc_field(
        10.0, "s without EMG data while the TCU answers on its command port: the data "
        "connection is kept meanwhile, so the frames it held arrive in its burst; longer = "
        "device lost (0: no waiting, lost after data_timeout)", range=(0.0, None))
    retry_interval: float = doc_field(1.0, "s between reconnection attempts (and autostart "
                                           "configure attempts)", range=(0.0, None))

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ConfigError("parameter 'host' must not be empty")
        for name in ("command_port", "emg_port", "aux_port"):
            port = getattr(self, name)
            lowest = 1 if name == "command_port" else 0
            if not lowest <= port <= 65535:
                raise ConfigError(f"parameter '{name}' must be a TCP port (1-65535"
                                  f"{', or 0 for the default' if lowest == 0 else ''}), got {port}")
        _check_slots("sensor_slots", self.sensor_slots, allow_empty=False)
        _check_slots("aux_slots", self.aux_slots, allow_empty=True)
        if self.channel_names:
            if len(self.channel_names) != len(self.sensor_slots):
                raise ConfigError(
                    f"parameter 'channel_names' has {len(self.channel_names)} names but "
                    f"'sensor_slots' selects {len(self.sensor_slots)} slots")
            if any(not n.strip() for n in self.channel_names):
                raise ConfigError("parameter 'channel_names' contains an empty name")
            if len(set(self.channel_names)) != len(self.channel_names):
                raise ConfigError("parameter 'channel_names' contains duplicate names")
        if self.expected_rate < 0:
            raise ConfigError("parameter 'expected_rate' must be >= 0 Hz, "
                              f"got {self.expected_rate}")
        if self.publish_rate < 0:
            raise ConfigError(f"parameter 'publish_rate' must be >= 0 Hz, got {self.publish_rate}")
        if self.expected_rate and self.publish_rate > self.expected_rate:
            raise ConfigError(f"parameter 'publish_rate' ({self.publish_rate} Hz) exceeds "
                              f"'expected_rate' ({self.expected_rate} Hz)")
        layout = self.aux_layout
        unknown = [c for c in self.aux_components if c not in layout]
        if unknown:
            raise ConfigError(f"parameter 'aux_components': unknown {', '.join(unknown)} "
                              f"(the {'legacy' if self.legacy else 'Avanti'} aux layout is "
                              f"{', '.join(layout)})")
        for name in ("connect_timeout", "data_timeout", "retry_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"parameter '{name}' must be > 0 s, got {getattr(self, name)}")
        if self.stall_timeout < 0:
            raise ConfigError(f"parameter 'stall_timeout' must be >= 0 s, got "
                              f"{self.stall_timeout}")

    @property
    def emg_channel_names(self) -> list[str]:
        return list(self.channel_names) or [f"EMG{slot}" for slot in self.sensor_slots]

    @property
    def data_ports(self) -> tuple[int, int]:
        emg, aux = tp.data_ports(self.legacy)
        return self.emg_port or emg, self.aux_port or aux

    @property
    def aux_layout(self) -> list[str]:
        return AUX_LAYOUT_LEGACY if self.legacy else AUX_LAYOUT_AVANTI


def _check_slots(name: str, slots: list[int], allow_empty: bool) -> None:
    if not slots and not allow_empty:
        raise ConfigError(f"parameter '{name}' must list at least one sensor slot (1-{tp.SLOTS})")
    bad = [s for s in slots if not 1 <= s <= tp.SLOTS]
    if bad:
        raise ConfigError(f"parameter '{name}': slots must be 1-{tp.SLOTS}, got {bad}")
    if len(set(slots)) != len(slots):
        raise ConfigError(f"parameter '{name}' lists a slot twice: {slots}")


class CommandChannel:
    """The TCU command connection: send packets, read replies by the CRLF CRLF delimiter."""

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.timeout = timeout
        self._parser = tp.ReplyParser()
        self._replies: list[str] = []

    def read_reply(self, what: str) -> str:
        deadline = time.monotonic() + self.timeout
        while not self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceError(f"no reply from the TCU to {what} within {self.timeout:g} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                raise DeviceError(f"the TCU closed the command connection (waiting for {what})")
            self._replies.extend(self._parser.feed(data))
        return self._replies.pop(0)

    def query(self, command: str) -> str:
        self.sock.sendall(tp.encode_commands(command))
        return self.read_reply(command)

    def expect_ok(self, command: str) -> None:
        reply = self.query(command)
        if reply.upper() != tp.REPLY_OK:
            raise DeviceError(f"the TCU answered {reply!r} to {command}")

    def drain(self) -> bool:
        """Read unsolicited bytes without blocking; False when the TCU closed the connection."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return True
        finally:
            self.sock.setblocking(True)
        if not data:
            return False
        self._parser.feed(data)
        return True


@dataclass
class DeviceInfo:
    """What the TCU reported in the last session."""

    banner: str = ""
    frame_interval: float = 0.0
    emg_samples_per_frame: int = 0
    emg_rate: float = 0.0
    aux_samples_per_frame: int = 0
    aux_rate: float = 0.0
    unpaired_slots: list[int] = field(default_factory=list)


class TrignoClient(DeviceLink):
    """Streams the selected Trigno slots to on_emg (and on_aux) as SignalChunks, in a thread."""

    def __init__(self, settings: TrignoSettings, on_emg: Callable[[SignalChunk], None],
                 on_aux: Callable[[SignalChunk], None] | None = None,
                 on_status: Callable[[LinkStatus], None] | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__("trigno-client", settings.retry_interval, on_status)
        self.settings = settings
        self.info = DeviceInfo()
        self._clock = clock
        self._sockets: list[socket.socket] = []
        self._command: CommandChannel | None = None
        self.emg = StreamAssembler(
            [s - 1 for s in settings.sensor_slots], np.ones(len(settings.sensor_slots)),
            settings.emg_channel_names, "V", 0, on_emg)
        self.aux = self._aux_assembler(on_aux) if settings.aux_enabled and on_aux else None

    def _aux_assembler(self, on_aux) -> StreamAssembler:
        s = self.settings
        layout = s.aux_layout
        components = s.aux_components or layout
        slots = s.aux_slots or s.sensor_slots
        slot_names = dict(zip(s.sensor_slots, s.emg_channel_names))
        columns, scales, names, units = [], [], [], []
        for slot in slots:
            for component in components:
                factor, unit = AUX_SI[component.split("_")[0]]
                columns.append((slot - 1) * len(layout) + layout.index(component))
                scales.append(factor)
                units.append(unit)
                names.append(f"{slot_names.get(slot, f'slot{slot}')}_{component}")
        distinct = list(dict.fromkeys(units))
        # One unit per chunk: a mix is spelled out by component, in layout order.
        unit = distinct[0] if len(distinct) == 1 else ",".join(distinct)
        return StreamAssembler(columns, np.array(scales), names, unit, 0, on_aux)

    # -- DeviceLink ----------------------------------------------------------------------
    def connect(self) -> str:
        """Command connection, banner, data format, rate and paired-slot check."""
        s = self.settings
        self._command = CommandChannel(self._connect(s.command_port, "command"),
                                       s.connect_timeout)
        self.info = self._configure(self._command)
        text = (f"TCU at {s.host}: EMG at {self.info.emg_rate:.6g} Hz, slots {s.sensor_slots}")
        if self.info.unpaired_slots:
            text += f"; slots not paired on the TCU: {self.info.unpaired_slots}"
        return text

    def stream(self) -> None:
        """Data connections, START, rows to chunks until halted or lost."""
        s = self.settings
        command = self._command
        emg_port, aux_port = s.data_ports
        try:
            emg_sock = self._connect(emg_port, "EMG data")
            aux_sock = self._connect(aux_port, "aux data") if self.aux else None
            self._chunk_sizes()
            self.emg.begin_segment(self.info.emg_rate, self.after_loss)
            if self.aux:
                self.aux.begin_segment(self.info.aux_rate, self.after_loss)
            command.expect_ok("START")
            self.streaming(self._describe_stream())
            self._stream(command, emg_sock, aux_sock)
        finally:
            self.emg.flush()
            if self.aux:
                self.aux.flush()

    def stop_streaming(self) -> None:
        """STOP on the command connection; the data connections close."""
        try:
            self._command.sock.settimeout(self.settings.connect_timeout)
            self._command.expect_ok("STOP")
        finally:
            self._close_sockets(keep=self._command.sock)

    def disconnect(self) -> None:
        """QUIT when the command connection is up, then close every socket."""
        command, self._command = self._command, None
        if command is not None and command.sock in self._sockets:
            try:
                command.sock.settimeout(0.5)
                command.query("QUIT")
            except (OSError, DeviceError):
                pass
        self._close_sockets()

    def _close_sockets(self, keep: socket.socket | None = None) -> None:
        for sock in [sock for sock in self._sockets if sock is not keep]:
            close_socket(sock)
            self._sockets.remove(sock)

    # -- steps ---------------------------------------------------------------------------
    def _connect(self, port: int, what: str) -> socket.socket:
        address = (self.settings.host, port)
        try:
            sock = socket.create_connection(address, timeout=self.settings.connect_timeout)
        except OSError as error:
            raise DeviceError(f"{what} port {address[0]}:{port}: {error.strerror or error}") \
                from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sockets.append(sock)
        return sock

    def _configure(self, command: CommandChannel) -> DeviceInfo:
        s = self.settings
        info = DeviceInfo(banner=command.read_reply("the banner"))
        if s.configure_device:
            command.expect_ok(f"BACKWARDS COMPATIBILITY {'ON' if s.legacy else 'OFF'}")
            command.expect_ok(f"UPSAMPLE {'ON' if s.upsample else 'OFF'}")
            command.expect_ok(f"ENDIAN {'BIG' if s.big_endian else 'LITTLE'}")
        info.frame_interval = tp.parse_number(command.query("FRAME INTERVAL?"), "FRAME INTERVAL?")
        info.emg_samples_per_frame = int(tp.parse_number(
            command.query("MAX SAMPLES EMG?"), "MAX SAMPLES EMG?"))
        info.emg_rate = tp.sample_rate(info.emg_samples_per_frame, info.frame_interval)
        if s.expected_rate and abs(info.emg_rate - s.expected_rate) > RATE_TOLERANCE_HZ:
            raise DeviceError(
                f"the TCU streams EMG at {info.emg_rate:.3f} Hz ({info.emg_samples_per_frame} "
                f"samples per {info.frame_interval} s frame) but expected_rate is "
                f"{s.expected_rate:g} Hz: fix the TCU settings or the parameter")
        if self.aux:
            info.aux_samples_per_frame = int(tp.parse_number(
                command.query("MAX SAMPLES AUX?"), "MAX SAMPLES AUX?"))
            info.aux_rate = tp.sample_rate(info.aux_samples_per_frame, info.frame_interval)
        for slot in s.sensor_slots:
            reply = command.query(f"SENSOR {slot} PAIRED?")
            if reply.upper() == "NO":
                info.unpaired_slots.append(slot)
        return info

    def set_publish_rate(self, rate: float) -> None:
        """A new publish_rate, in effect from the next chunk (indices stay continuous)."""
        self.settings = replace(self.settings, publish_rate=rate)
        if self.info.emg_rate:
            self._chunk_sizes()

    def _chunk_sizes(self) -> None:
        # publish_rate 0: one chunk per device frame, even when a read brings several.
        rate, info = self.settings.publish_rate, self.info
        self.emg.chunk_size = info.emg_samples_per_frame if rate == 0 else \
            max(1, round(info.emg_rate / rate))
        if self.aux:
            self.aux.chunk_size = info.aux_samples_per_frame if rate == 0 else \
                max(1, round(info.aux_rate / rate))

    def _describe_stream(self) -> str:
        text = (f"streaming {len(self.settings.sensor_slots)} EMG channels at "
                f"{self.info.emg_rate:.6g} Hz from {self.settings.host}")
        if self.info.unpaired_slots:
            text += f"; slots not paired on the TCU: {self.info.unpaired_slots}"
        return text

    def _stream(self, command: CommandChannel, emg_sock, aux_sock) -> None:
        s = self.settings
        emg_decoder = tp.RowDecoder(tp.SLOTS, s.big_endian)
        aux_decoder = tp.RowDecoder(tp.aux_row_floats(s.legacy), s.big_endian)
        selector = selectors.DefaultSelector()
        selector.register(command.sock, selectors.EVENT_READ, "command")
        selector.register(emg_sock, selectors.EVENT_READ, "emg")
        if aux_sock is not None:
            selector.register(aux_sock, selectors.EVENT_READ, "aux")
        last_emg = time.monotonic()
        stalled, next_probe = False, 0.0
        try:
            while not self.stop_requested():
                for key, _ in selector.select(timeout=0.05):
                    if key.data == "command":
                        if not command.drain():
                            raise DeviceError("the TCU closed the command connection")
                        continue
                    data = key.fileobj.recv(1 << 16)
                    if not data:
                        raise DeviceError(f"the TCU closed the {key.data.upper()} data connection")
                    arrival = self._clock()
                    if key.data == "emg":
                        last_emg = time.monotonic()
                        self.emg.push(emg_decoder.feed(data), arrival)
                    else:
                        self.aux.push(aux_decoder.feed(data), arrival)
                silent = time.monotonic() - last_emg
                if silent <= s.data_timeout:
                    if stalled:
                        stalled = False
                        self.set_status(STREAMING, self._describe_stream())
                    continue
                if time.monotonic() >= next_probe:
                    # Still there? Then it is a stall: the held frames will come on this very
                    # connection, which a reconnection would throw away.
                    if silent > s.stall_timeout or not self._tcu_answers(command):
                        raise DeviceError(f"no EMG data for {silent:.1f} s" + (
                            " (the TCU answers, but longer than stall_timeout)"
                            if silent > s.stall_timeout and s.stall_timeout else ""))
                    next_probe = time.monotonic() + s.data_timeout
                    if not stalled:
                        stalled = True
                        self.set_status(STREAMING, f"stalled: no EMG data for {silent:.1f} s; "
                                        "the TCU answers: waiting for the frames it holds")
        finally:
            selector.close()

    def _tcu_answers(self, command: CommandChannel) -> bool:
        """Whether the TCU answers a query on the command connection within connect_timeout."""
        try:
            command.sock.settimeout(self.settings.connect_timeout)
            command.query("FRAME INTERVAL?")
            return True
        except (OSError, DeviceError):
            return False
