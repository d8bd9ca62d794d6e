"""A worked example of a custom device: a small UDP amplifier, and its simulator (ROS-free).

The protocol (one UDP port on the amplifier): the host sends `HELLO`, the amplifier answers
`AMP <rate> <channels>`; `START` makes it send packets to the host, `STOP` ends them. A packet
is a little-endian uint32 running counter of its first sample and a uint16 sample count,
then samples x channels float32 volts. UDP loses packets: the counter shows which.

    udp_amplifier_sim --port 52000 --drop-every 50      # the simulator (every 50th packet lost;
                                                        # the graph: --amplifier-port N)

UdpAmplifier is the whole driver: connect() (check rate and channel count), start_streaming(),
read_block(), stop_streaming(), disconnect(); CustomDevice does the rest.
"""
from __future__ import annotations

import argparse
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from biosig_ros.devices.custom_device import Block, CustomDevice, CustomDeviceSettings
from biosig_ros.devices.device_link import DeviceError
from biosig_ros.devices.framing import SampleFramer
from biosig_ros.settings import doc_field

HEADER = struct.Struct("<IH")
READ_WAIT_S = 0.1


@dataclass
class UdpAmplifierSettings(CustomDeviceSettings):
    """The example amplifier's parameters (and those of every custom device)."""

    host: str = doc_field("127.0.0.1", "address of the amplifier")
    port: int = doc_field(52000, "UDP port of the amplifier", range=(1, 65535))
    sample_rate: float = doc_field(1000.0, "samples per second the amplifier must report",
                                   range=(0.0, None))
    channel_names: list[str] = doc_field(["ch1", "ch2", "ch3", "ch4"],
                                         "one name per amplifier channel")
    topic: str = doc_field("amplifier/raw", "topic of the SignalChunks (relative)")


class UdpAmplifier(CustomDevice):
    """The driver: about 30 lines of device-specific code."""

    settings_type = UdpAmplifierSettings

    def connect(self) -> str:
        s = self.settings
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((s.host, s.port))
        self.sock.settimeout(READ_WAIT_S)
        reply = self._ask(b"HELLO").split()
        if len(reply) != 3 or reply[0] != b"AMP":
            raise DeviceError(f"unexpected reply to HELLO: {b' '.join(reply)!r}")
        rate, channels = float(reply[1]), int(reply[2])
        if rate != s.sample_rate or channels != len(s.channel_names):
            raise DeviceError(f"the amplifier sends {channels} channels at {rate:g} Hz, the "
                              f"parameters say {len(s.channel_names)} at {s.sample_rate:g} Hz")
        self.framer = SampleFramer(channels, "<f4")
        return f"UDP amplifier {s.host}:{s.port}, {channels} channels at {rate:g} Hz"

    def start_streaming(self) -> None:
        self.sock.send(b"START")

    def read_block(self) -> Block | None:
        try:
            packet = self.sock.recv(65536)
        except socket.timeout:
            return None
        if len(packet) < HEADER.size or packet[:3] == b"AMP":
            return None
        first, _count = HEADER.unpack_from(packet)
        # Whole samples only: a cut datagram loses its tail (the next counter shows the gap)
        # instead of failing a reshape.
        samples = self.framer.datagram(packet[HEADER.size:])
        return None if samples is None else Block(samples, first)

    def stop_streaming(self) -> None:
        self.sock.send(b"STOP")

    def disconnect(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()

    def _ask(self, command: bytes) -> bytes:
        for _ in range(10):                         # a datagram may be lost: ask again
            self.sock.send(command)
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                continue
        raise DeviceError(f"no answer to {command.decode()} within {10 * READ_WAIT_S:g} s")


class UdpAmplifierSimulator:
    """The amplifier: answers HELLO, streams sines (channel c at c Hz, 1 mV) after START."""

    def __init__(self, port: int = 0, rate: float = 1000.0, channels: int = 4,
                 samples_per_packet: int = 10, drop_every: int = 0, host: str = "127.0.0.1"):
        self.rate, self.channels, self.per_packet = rate, channels, samples_per_packet
        self.drop_every = drop_every
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.005)
        self.port = self.sock.getsockname()[1]
        self.commands: list[bytes] = []
        self.packets_dropped = 0
        self._client = None
        self._counter = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-amplifier-sim", daemon=True)

    @staticmethod
    def values(first: int, count: int, rate: float, channels: int) -> np.ndarray:
        """The samples first..first+count (float32 volts), as the simulator sends them."""
        t = np.arange(first, first + count)[:, None] / rate
        return (1e-3 * np.sin(2 * np.pi * np.arange(1, channels + 1) * t)).astype(np.float32)

    def start(self) -> "UdpAmplifierSimulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _run(self) -> None:
        interval = self.per_packet / self.rate
        next_due = time.monotonic()
        while not self._stop.is_set():
            self._serve_commands()
            if self._client is None:
                next_due = time.monotonic()
                continue
            while time.monotonic() >= next_due:       # whole packets on an absolute schedule
                self._send_packet()
                next_due += interval

    def _serve_commands(self) -> None:
        try:
            command, address = self.sock.recvfrom(64)
        except (socket.timeout, OSError):
            return
        self.commands.append(command)
        if command == b"HELLO":
            self.sock.sendto(f"AMP {self.rate:g} {self.channels}".encode(), address)
        elif command == b"START":
            self._client = address
        elif command == b"STOP":
            self._client = None

    def _send_packet(self) -> None:
        first, self._counter = self._counter, self._counter + self.per_packet
        if self.drop_every and (first // self.per_packet) % self.drop_every == self.drop_every - 1:
            self.packets_dropped += 1
            return
        data = self.values(first, self.per_packet, self.rate, self.channels)
        try:
            self.sock.sendto(HEADER.pack(first, self.per_packet) + data.tobytes(), self._client)
        except OSError:
            self._client = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="udp_amplifier_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=52000, help="UDP port (0 = any free one)")
    parser.add_argument("--rate", type=float, default=1000.0, help="samples per second")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--drop-every", type=int, default=0,
                        help="lose one packet in N (0 = none), as a busy network would")
    args = parser.parse_args(argv)
    try:
        simulator = UdpAmplifierSimulator(args.port, args.rate, args.channels,
                                          drop_every=args.drop_every).start()
    except OSError as error:
        print(f"udp_amplifier_sim: cannot listen: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"udp_amplifier_sim: listening on UDP {simulator.port}, {args.channels} channels at "
          f"{args.rate:g} Hz", flush=True)
    stop.wait()
    simulator.stop()
    print("udp_amplifier_sim: stopped", flush=True)


if __name__ == "__main__":
    main()
