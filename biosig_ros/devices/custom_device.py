"""Your own device in a few lines (ROS-free): subclass CustomDevice, write connect() and
read_block(); the package does the rest.

    class MyAmplifier(CustomDevice):
        settings_type = MyAmplifierSettings          # a CustomDeviceSettings with your fields

        def connect(self):
            self.sock = socket.create_connection((self.settings.host, 5000), timeout=1.0)
            self.framer = SampleFramer(len(self.settings.channel_names), "<f4")
            return "my amplifier at " + self.settings.host

        def read_block(self):
            data = self.sock.recv(4096)              # block at most ~data_timeout
            if not data:
                raise DeviceError("the amplifier closed the connection")
            return self.framer.feed(data)            # whole samples (devices/framing.py)

        def disconnect(self):
            self.sock.close()

What the package does (DeviceLink + StreamAssembler): one I/O thread; chunks of
`sample_rate / publish_rate` samples as SignalChunks with a running sample index and the
acquisition time of their first sample (from arrival times, never later than arrival; stalls
and bursts handled); a block that names the device's own sample counter (Block) turns missing
samples (lost packets) into an index gap counted as lost; a device that stops sending for
`data_timeout` s or raises is reported lost, retried every `retry_interval` s and resumed, the
index jumping over the outage. With biosig_ros.ros.custom_device_node the device becomes a
lifecycle node with QoS, diagnostics and autostart (docs/custom_device.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from biosig_ros.devices.device_link import DeviceError, DeviceLink, LinkStatus
from biosig_ros.devices.stream_assembler import StreamAssembler
from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field
from biosig_ros.signals import SignalChunk


@dataclass
class CustomDeviceSettings:
    """The parameters every custom device has; subclass it to add your own fields."""

    sample_rate: float = doc_field(1000.0, "samples per second per channel the device sends",
                                   range=(0.0, None))
    channel_names: list[str] = doc_field(["ch1"], "one name per column of read_block()")
    unit: str = doc_field("V", "unit of the values (SI)")
    publish_rate: float = doc_field(100.0, "chunks per second (0 = one chunk per block)",
                                    range=(0.0, None))
    topic: str = doc_field("device/raw", "topic of the SignalChunks (relative)")
    data_timeout: float = doc_field(1.0, "s without data while streaming = device lost",
                                    range=(0.0, None))
    retry_interval: float = doc_field(1.0, "s between reconnection (and autostart configure) "
                                           "attempts", range=(0.0, None))

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"parameter 'sample_rate' must be > 0 Hz, got {self.sample_rate}")
        if not self.channel_names or len(set(self.channel_names)) != len(self.channel_names):
            raise ConfigError(f"parameter 'channel_names' must list distinct names, got "
                              f"{self.channel_names}")
        if not 0 <= self.publish_rate <= self.sample_rate:
            raise ConfigError(f"parameter 'publish_rate' must be within 0-{self.sample_rate:g} "
                              f"Hz, got {self.publish_rate}")
        for name in ("data_timeout", "retry_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"parameter '{name}' must be > 0 s, got {getattr(self, name)}")


class Block(NamedTuple):
    """Samples x channels, with the device's own running index of the first sample when it
    sends one (None: the package counts)."""

    data: np.ndarray
    first_index: int | None = None


class CustomDevice(DeviceLink):
    """Base class of a device: write connect() and read_block(); optionally start_streaming(),
    stop_streaming() and disconnect(). self.settings holds the settings."""

    settings_type: type = CustomDeviceSettings

    def __init__(self, settings: CustomDeviceSettings, on_chunk: Callable[[SignalChunk], None],
                 on_status: Callable[[LinkStatus], None] | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__(type(self).__name__, settings.retry_interval, on_status)
        self.settings = settings
        self._clock = clock
        chunk = 0 if settings.publish_rate == 0 else \
            max(1, round(settings.sample_rate / settings.publish_rate))
        count = len(settings.channel_names)
        self.assembler = StreamAssembler(list(range(count)), np.ones(count),
                                         settings.channel_names, settings.unit, chunk, on_chunk)
        self._device_next: int | None = None

    # -- what a device writes ------------------------------------------------------------
    def connect(self) -> str:
        """Open the device and check it (raise DeviceError with the reason); returns a
        one-line description."""
        raise NotImplementedError

    def read_block(self) -> np.ndarray | Block | None:
        """Wait (a short while, well under data_timeout) for samples: samples x channels, a
        Block, or None when nothing came. Raise DeviceError when the device is gone."""
        raise NotImplementedError

    def start_streaming(self) -> None:
        """Ask the device to send (default: it always does)."""

    # -- the package's part --------------------------------------------------------------
    def stream(self) -> None:
        s = self.settings
        self.assembler.begin_segment(s.sample_rate, self.after_loss)
        self._device_next = None
        self.start_streaming()
        self.streaming(f"streaming {len(s.channel_names)} channels at {s.sample_rate:g} Hz")
        last_data = time.monotonic()
        try:
            while not self.stop_requested():
                block = self.read_block()
                if block is None or len(block[0] if isinstance(block, Block) else block) == 0:
                    if time.monotonic() - last_data > s.data_timeout:
                        raise DeviceError(f"no data for {s.data_timeout:g} s")
                    continue
                last_data = time.monotonic()
                self._push(block if isinstance(block, Block) else Block(block), self._clock())
        finally:
            self.assembler.flush()

    def _push(self, block: Block, arrival: float) -> None:
        data = np.asarray(block.data, dtype=float)
        if data.ndim != 2 or data.shape[1] != len(self.settings.channel_names):
            raise DeviceError(f"read_block() gave shape {data.shape}, expected samples x "
                              f"{len(self.settings.channel_names)} channels")
        if block.first_index is not None:
            if self._device_next is not None and block.first_index < self._device_next:
                # The device's counter went back: it restarted; the clock places the new run.
                self.assembler.begin_segment(self.settings.sample_rate, after_loss=True)
            elif self._device_next is not None:
                self.assembler.skip(block.first_index - self._device_next)
            self._device_next = block.first_index + data.shape[0]
        self.assembler.push(data, arrival)
