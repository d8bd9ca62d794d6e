"""trigno_sim: a TCP server that behaves like the Delsys Trigno Control Utility (TCU).

Command port (banner, one reply per command, replies overridable), legacy and Avanti EMG / aux
data ports, frames of float32 rows every 13.5 ms after START. The EMG comes from a recording
(the `emg` key of a biosiglive .bio file, channels x samples in volts, placed in slots) or is
synthetic. Usable in-process (TrignoSimulator) or as a program:

    trigno_sim --recording data/abd.bio --loop
    python -m biosig_ros.devices.trigno_simulator --synthetic --channels 16 --port-base 0

A stall (the TCU, or the network, holds its frames, then delivers them in a burst) is
reproduced by stall(seconds), by `--stall AT:SECONDS`, or by the signal SIGUSR1 (a stall of
`--stall-seconds`).
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


from biosig_ros.devices import trigno_protocol as tp
from biosig_ros.devices.device_link import close_socket
from biosig_ros.devices.simulator_cli import add_run_arguments, serve_until_stopped
from biosig_ros.devices.trigno_sources import (EmgSource, recording_source,
                                               synthetic_aux_rows, synthetic_source)
from biosig_ros.errors import ConfigError

DEFAULT_BANNER = "Delsys Trigno System Digital Protocol Version 3.6.0 "


@dataclass
class SimulatorSettings:
    """Ports (0 = any free port), banner, reply overrides and initial TCU state."""

    host: str = "127.0.0.1"
    command_port: int = tp.COMMAND_PORT
    legacy_emg_port: int = tp.EMG_PORT_LEGACY
    legacy_aux_port: int = tp.AUX_PORT_LEGACY
    emg_port: int = tp.EMG_PORT_AVANTI
    aux_port: int = tp.AUX_PORT_AVANTI
    banner: str = DEFAULT_BANNER
    replies: dict[str, str] = field(default_factory=dict)   # exact command -> reply text
    legacy: bool = False            # BACKWARDS COMPATIBILITY at start
    upsample: bool = True           # 27 (ON) or 26 (OFF) EMG samples per frame
    frame_interval: float = tp.FRAME_INTERVAL_S

    @classmethod
    def from_port_base(cls, base: int, **kwargs) -> "SimulatorSettings":
        """Ports base..base+4 like the TCU's 50040..50044; base 0 gives five free ports."""
        ports = [0] * 5 if base == 0 else [base + i for i in range(5)]
        return cls(command_port=ports[0], legacy_emg_port=ports[1], legacy_aux_port=ports[2],
                   emg_port=ports[3], aux_port=ports[4], **kwargs)


class TrignoSimulator:
    """The TCU stand-in. start() binds every port and serves until stop().

    on_frame(frame_number, emg_first_index, emg_count, sent_time) is called after each frame
    went out (for latency measurements).
    """

    def __init__(self, source: EmgSource, settings: SimulatorSettings | None = None,
                 on_frame: Callable[[int, int, int, float], None] | None = None):
        self.source = source
        self.settings = settings or SimulatorSettings()
        self.on_frame = on_frame
        self.ports: dict[str, int] = {}
        self.legacy = self.settings.legacy
        self.upsample = self.settings.upsample
        self.big_endian = False
        self.streaming = threading.Event()
        self.frames_sent = 0
        self.emg_index = 0
        self.aux_index = 0
        self.finished = threading.Event()          # a non-looping recording ran out
        self.commands: list[str] = []               # every command received, for tests
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listeners: dict[str, socket.socket] = {}
        self._clients: dict[str, list[socket.socket]] = {
            "emg": [], "aux": [], "legacy_emg": [], "legacy_aux": []}
        self._command_clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stall_until = 0.0

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> "TrignoSimulator":
        s = self.settings
        wanted = {"command": s.command_port, "legacy_emg": s.legacy_emg_port,
                  "legacy_aux": s.legacy_aux_port, "emg": s.emg_port, "aux": s.aux_port}
        try:
            for name, port in wanted.items():
                self._listeners[name] = _listen(s.host, port)
                self.ports[name] = self._listeners[name].getsockname()[1]
        except OSError:
            self._close_listeners()
            raise
        for name in wanted:
            self._spawn(self._accept_loop, name)
        self._spawn(self._stream_loop, "stream")
        return self

    def stop(self) -> None:
        """Close every socket, as if the TCU had been closed."""
        self._stop.set()
        self.streaming.clear()
        self._close_listeners()
        with self._lock:
            clients = [c for group in self._clients.values() for c in group]
            clients += self._command_clients
            for group in self._clients.values():
                group.clear()
            self._command_clients.clear()
        for sock in clients:
            close_socket(sock)
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stall(self, seconds: float) -> None:
        """Hold the frames for `seconds`, then send every frame owed at once (a burst): the
        acquisition clock keeps running, as on a TCU whose connection froze."""
        self._stall_until = time.monotonic() + seconds

    def connections(self) -> dict[str, int]:
        """Open client connections per port (command, emg, aux, legacy_emg, legacy_aux); data
        connections that the client closed are dropped here (they are written to only while
        streaming)."""
        with self._lock:
            for group in self._clients.values():
                for sock in [sock for sock in group if not _open(sock)]:
                    group.remove(sock)
                    close_socket(sock)
            counts = {name: len(group) for name, group in self._clients.items()}
            counts["command"] = len(self._command_clients)
        return counts

    @property
    def emg_samples_per_frame(self) -> int:
        return tp.EMG_SAMPLES_PER_FRAME_UPSAMPLED if self.upsample else \
            tp.EMG_SAMPLES_PER_FRAME_NATIVE

    # -- sockets -------------------------------------------------------------------------
    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, args=(name,), name=f"trigno-sim-{name}",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def _close_listeners(self) -> None:
        for sock in self._listeners.values():
            close_socket(sock)
        self._listeners.clear()

    def _accept_loop(self, name: str) -> None:
        listener = self._listeners.get(name)
        while listener is not None and not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if name == "command":
                with self._lock:
                    self._command_clients.append(client)
                threading.Thread(target=self._serve_commands, args=(client,),
                                 name="trigno-sim-commands", daemon=True).start()
            else:
                client.settimeout(1.0)  # a stalled reader is dropped, not waited for
                with self._lock:
                    self._clients[name].append(client)

    def _serve_commands(self, client: socket.socket) -> None:
        parser = tp.CommandParser()
        try:
            client.sendall(tp.encode_reply(self.settings.banner))
            while not self._stop.is_set():
                data = client.recv(4096)
                if not data:
                    return
                for command in parser.feed(data):
                    reply = self.reply(command)
                    client.sendall(tp.encode_reply(reply))
                    if reply == "BYE":
                        return
        except OSError:
            return
        finally:
            with self._lock:
                if client in self._command_clients:
                    self._command_clients.remove(client)
            close_socket(client)

    # -- commands ------------------------------------------------------------------------
    def reply(self, command: str) -> str:
        """The TCU's answer to one command (and its effect on the simulated state)."""
        command = " ".join(command.upper().split())
        self.commands.append(command)
        if command in self.settings.replies:
            return self.settings.replies[command]
        words = command.split()
        simple = {
            "MASTER": "NEW MASTER",
            "FRAME INTERVAL?": f"{self.settings.frame_interval:g}",
            "MAX SAMPLES EMG?": str(self.emg_samples_per_frame),
            "MAX SAMPLES AUX?": str(tp.AUX_SAMPLES_PER_FRAME),
            "BACKWARDS COMPATIBILITY?": "YES" if self.legacy else "NO",
            "UPSAMPLING?": f"UPSAMPLING {'ON' if self.upsample else 'OFF'}",
            "ENDIANNESS?": "BIG" if self.big_endian else "LITTLE",
            "ENDIANESS?": "BIG" if self.big_endian else "LITTLE",
            "EMGCHANNELCOUNT?": str(len(self.source.slots)),
            "AUXCHANNELCOUNT?": str(len(self.source.slots) * tp.aux_values_per_slot(self.legacy)),
        }
        if command in simple:
            return simple[command]
        if command == "START":
            self.streaming.set()
            return tp.REPLY_OK
        if command == "STOP":
            self.streaming.clear()
            return tp.REPLY_OK
        if command == "QUIT":
            return "BYE"
        if words[:2] == ["BACKWARDS", "COMPATIBILITY"] and words[2:] in (["ON"], ["OFF"]):
            return self._set_while_stopped("legacy", words[2] == "ON")
        if words[0] == "UPSAMPLE" and words[1:] in (["ON"], ["OFF"]):
            return self._set_while_stopped("upsample", words[1] == "ON")
        if words[0] == "ENDIAN" and words[1:] in (["LITTLE"], ["BIG"]):
            return self._set_while_stopped("big_endian", words[1] == "BIG")
        if words[0] == "TRIGGER" and len(words) == 3 and words[1] in ("START", "STOP") \
                and words[2] in ("ON", "OFF"):
            return tp.REPLY_OK
        if words[0] == "SENSOR" and len(words) >= 3:
            return self._sensor_reply(words)
        return tp.REPLY_INVALID

    def _set_while_stopped(self, attribute: str, value: bool) -> str:
        # The TCU refuses to change the data format while streaming.
        if self.streaming.is_set() and getattr(self, attribute) != value:
            return tp.REPLY_CANNOT
        setattr(self, attribute, value)
        return tp.REPLY_OK

    def _sensor_reply(self, words: list[str]) -> str:
        try:
            slot = int(words[1])
        except ValueError:
            return tp.REPLY_INVALID
        if not 1 <= slot <= tp.SLOTS:
            return tp.REPLY_CANNOT
        present = slot in self.source.slots
        aux_count = tp.aux_values_per_slot(self.legacy)
        query = " ".join(words[2:])
        if query in ("PAIRED?", "ACTIVE?"):
            return "YES" if present else "NO"
        if not present:
            return tp.REPLY_CANNOT
        if query == "TYPE?":
            return "D" if self.legacy else "O"
        if query == "MODE?":
            return "0"
        if query == "STARTINDEX?":
            return str(slot)
        if query == "CHANNELCOUNT?":
            return str(1 + aux_count)
        if len(words) == 5 and words[2] == "CHANNEL":
            try:
                channel = int(words[3])
            except ValueError:
                return tp.REPLY_INVALID
            if not 1 <= channel <= 1 + aux_count:
                return tp.REPLY_CANNOT
            emg = channel == 1
            samples = self.emg_samples_per_frame if emg else tp.AUX_SAMPLES_PER_FRAME
            answers = {
                "RATE?": f"{tp.sample_rate(samples, self.settings.frame_interval):.3f}",
                "UNITS?": "V" if emg else ("g" if channel <= 4 else
                                           "deg/s" if channel <= 7 else "uT"),
                "GAIN?": "1", "SAMPLES?": str(samples)}
            return answers.get(words[4], tp.REPLY_INVALID)
        return tp.REPLY_INVALID

    # -- data ----------------------------------------------------------------------------
    def _stream_loop(self, _name: str) -> None:
        interval = self.settings.frame_interval
        next_due = None
        while not self._stop.is_set():
            if not self.streaming.wait(0.05):
                next_due = None
                continue
            now = time.monotonic()
            if next_due is None:
                next_due = now + interval
            if now < next_due or now < self._stall_until:
                self._stop.wait(min(max(next_due, self._stall_until) - now, 0.05))
                continue
            # Whole frames on an absolute schedule: a late wake-up sends the frames it owes.
            if not self._send_frame():
                self.streaming.clear()
                self.finished.set()
                continue
            next_due += interval

    def _send_frame(self) -> bool:
        spf = self.emg_samples_per_frame
        emg = self.source.rows(self.emg_index, spf)
        if emg is None:
            return False
        aux = synthetic_aux_rows(self.aux_index, tp.AUX_SAMPLES_PER_FRAME, self.source.slots,
                                 self.legacy, tp.sample_rate(tp.AUX_SAMPLES_PER_FRAME,
                                                             self.settings.frame_interval))
        prefix = "legacy_" if self.legacy else ""
        self._broadcast(prefix + "emg", tp.encode_rows(emg, self.big_endian))
        self._broadcast(prefix + "aux", tp.encode_rows(aux, self.big_endian))
        sent = time.time()
        first = self.emg_index
        self.emg_index += spf
        self.aux_index += tp.AUX_SAMPLES_PER_FRAME
        self.frames_sent += 1
        if self.on_frame is not None:
            self.on_frame(self.frames_sent, first, spf, sent)
        return True

    def _broadcast(self, port_name: str, payload: bytes) -> None:
        with self._lock:
            clients = list(self._clients[port_name])
        for client in clients:
            try:
                client.sendall(payload)
            except OSError:
                with self._lock:
                    if client in self._clients[port_name]:
                        self._clients[port_name].remove(client)
                close_socket(client)


def _open(sock: socket.socket) -> bool:
    """False once the peer closed the connection (a data client never sends anything)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A restarted simulator must get its ports back while old connections sit in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(8)
    except OSError:
        sock.close()
        raise
    return sock


def _parse_slots(text: str) -> list[int]:
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"slots must be comma-separated integers: {text!r}")


def _parse_reply(text: str) -> tuple[str, str]:
    command, sep, reply = text.partition("=")
    if not sep or not command.strip():
        raise argparse.ArgumentTypeError(f"--reply expects COMMAND=REPLY, got {text!r}")
    return " ".join(command.upper().split()), reply


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trigno_sim", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--recording", help=".bio file whose EMG (channels x samples, V) to stream")
    source.add_argument("--synthetic", action="store_true", help="stream synthetic EMG (default)")
    parser.add_argument("--key", default="emg", help="key of the EMG array in the .bio file")
    parser.add_argument("--channels", type=int, default=16, help="synthetic EMG channels")
    parser.add_argument("--slots", type=_parse_slots, default=None,
                        help="slots of the channels, e.g. 1,2,3 (default 1..N)")
    parser.add_argument("--loop", action="store_true", help="loop the recording")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port-base", type=int, default=tp.COMMAND_PORT,
                        help="command port; data ports follow (+1..+4); 0 = free ports")
    for name in ("command", "legacy-emg", "legacy-aux", "emg", "aux"):
        parser.add_argument(f"--{name}-port", type=int, default=None,
                            help=f"override the {name.replace('-', ' ')} port")
    parser.add_argument("--legacy", action="store_true",
                        help="start with BACKWARDS COMPATIBILITY ON (data on the legacy ports)")
    parser.add_argument("--no-upsample", action="store_true", help="26 samples per frame")
    parser.add_argument("--banner", default=DEFAULT_BANNER)
    parser.add_argument("--reply", type=_parse_reply, action="append", default=[],
                        metavar="COMMAND=REPLY", help="answer COMMAND with REPLY")
    add_run_arguments(parser, "hold the frames SECONDS long, AT s after start, then send them "
                      "in a burst (repeatable)")
    return parser


def run(argv: list[str] | None = None) -> int:
    """The trigno_sim program; returns its exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.recording:
            source = recording_source(args.recording, args.key, args.slots, args.loop)
        else:
            source = synthetic_source(args.channels, slots=args.slots)
    except ConfigError as error:
        print(f"trigno_sim: configuration error: {error}", file=sys.stderr, flush=True)
        return 2
    settings = SimulatorSettings.from_port_base(
        args.port_base, host=args.host, banner=args.banner, replies=dict(args.reply),
        legacy=args.legacy, upsample=not args.no_upsample)
    for name in ("command", "legacy_emg", "legacy_aux", "emg", "aux"):
        value = getattr(args, f"{name}_port")
        if value is not None:
            setattr(settings, f"{name}_port", value)
    simulator = TrignoSimulator(source, settings)
    try:
        simulator.start()
    except OSError as error:
        print(f"trigno_sim: cannot listen: {error}", file=sys.stderr, flush=True)
        return 1
    ports = " ".join(f"{k}={v}" for k, v in simulator.ports.items())
    banner = (f"trigno_sim: listening on {args.host} ({ports}); {len(source.slots)} EMG "
              f"channels in slots {source.slots}, {'looping' if source.loop else 'once'}")

    def report_finished() -> None:
        if simulator.finished.is_set():
            print("trigno_sim: recording finished", flush=True)
            simulator.finished.clear()

    serve_until_stopped("trigno_sim", simulator, banner, args, 0.2, on_tick=report_finished)
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
