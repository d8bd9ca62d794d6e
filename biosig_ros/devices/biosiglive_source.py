"""A running biosiglive 2.0.3 server as a source (ROS-free): a CustomDevice that polls it.

biosiglive's `StreamData` serves, per request and TCP connection, the newest chunk of each
device (`raw_device_data`: channels x samples of one loop) and waits for its next loop before
answering: one request consumes one frame. Polling back to back therefore receives every chunk
while the poll keeps up. What cannot be recovered: the replies carry no index or time, so a
frame served to nobody (the poll was late, the server slow) is gone; its absence is estimated
from the reply times: on a time base anchored on the earliest replies, a reply that comes
MISSED_FRAMES frame intervals or more later than the next frame is due is taken as having
skipped the frames in between (skipped in the indices, counted as lost). A reply delayed that
much without a frame being missed is miscounted the same way, and a single missed frame goes
unseen: an estimate, said as such. Stamps come from arrival times (SampleClock).
Replies are unpickled with a restricted unpickler (numpy arrays and plain data only).
"""
from __future__ import annotations

import pickle
import socket
import struct
from dataclasses import dataclass

import numpy as np

from biosig_ros.devices.custom_device import Block, CustomDevice, CustomDeviceSettings
from biosig_ros.devices.device_link import DeviceError
from biosig_ros.io.pickle_compat import loads_numpy
from biosig_ros.settings import doc_field

MISSED_FRAMES = 2  # a reply at least this many frames later than expected: frames missed
DRIFT = 1e-4       # s/s the time base may rise (clock drift between the two machines)


@dataclass
class BiosigliveSourceSettings(CustomDeviceSettings):
    """Which server, which data and its shape."""

    host: str = doc_field("127.0.0.1", "address of the biosiglive server")
    port: int = doc_field(50000, "TCP port of the biosiglive server", range=(1, 65535))
    data_key: str = doc_field("raw_device_data", "key requested (raw_device_data: the newest "
                                                 "chunk of each device)")
    device: int = doc_field(0, "index of the device in the server's list", range=(0, None))
    sample_rate: float = doc_field(2000.0, "samples per second of that device",
                                   range=(0.0, None))
    channel_names: list[str] = doc_field(["EMG1"], "one name per channel of that device")
    reply_timeout: float = doc_field(1.0, "s to wait for one reply", range=(0.0, None))
    topic: str = doc_field("emg/raw", "topic of the SignalChunks (relative)")


class BiosigliveSource(CustomDevice):
    """Polls one device of a biosiglive server."""

    settings_type = BiosigliveSourceSettings

    def connect(self) -> str:
        rows = self._request()                     # the server answers, with the right shape
        self._anchor = None                        # time of frame 0 (earliest estimate)
        self._last_arrival = 0.0
        self._frame = 0
        return (f"biosiglive server {self.settings.host}:{self.settings.port}: "
                f"{rows.shape[1]} channels, {rows.shape[0]} samples per frame")

    def read_block(self) -> Block:
        rows = self._request()
        arrival = self._clock()
        interval = rows.shape[0] / self.settings.sample_rate
        if self._anchor is None:
            self._anchor = arrival
        else:
            due = self._frame + 1
            by_time = int((arrival - self._anchor) / interval)
            self._frame = by_time if by_time - due >= MISSED_FRAMES else due
            allowed = self._anchor + DRIFT * (arrival - self._last_arrival)
            self._anchor = min(allowed, arrival - self._frame * interval)
        self._last_arrival = arrival
        return Block(rows, self._frame * rows.shape[0])

    def _request(self) -> np.ndarray:
        s = self.settings
        message = {"command": [s.data_key], "nb_frames_to_get": None, "down_sampling": None,
                   "custom_cmd": None}
        with socket.create_connection((s.host, s.port), timeout=s.reply_timeout) as sock:
            sock.sendall(pickle.dumps(message))
            size = struct.unpack(">I", _receive(sock, 4))[0]
            reply = loads_numpy(_receive(sock, size))
        value = reply.get(s.data_key) if isinstance(reply, dict) else None
        devices = value if isinstance(value, list) else [value]
        if s.device >= len(devices) or devices[s.device] is None:
            raise DeviceError(f"the server has no device {s.device} under '{s.data_key}'")
        data = np.atleast_2d(np.asarray(devices[s.device], dtype=float))
        if data.shape[0] != len(s.channel_names):
            raise DeviceError(f"device {s.device} has {data.shape[0]} channels, "
                              f"channel_names lists {len(s.channel_names)}")
        return data.T


def _receive(sock: socket.socket, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = sock.recv(min(size - got, 1 << 16))
        if not part:
            raise DeviceError("the biosiglive server closed the connection mid-reply")
        parts.append(part)
        got += len(part)
    return b"".join(parts)
