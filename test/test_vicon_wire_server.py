"""The wire simulator's connection behaviour seen from a raw socket (no Vicon SDK needed):
what it sends first, when it sends frames, pings, filters, keep-alive, stall, drop, restart,
and the vicon_wire_sim command line."""
from __future__ import annotations

import socket
import struct
import subprocess
import sys

import numpy as np
import pytest

from biosig_ros.devices.vicon_wire import ViconWireServer, WireDevice, WireScene, WireSubject
from biosig_ros.devices.vicon_wire import wire_format as wf
from ros_harness import wait_until

TIMEOUT_S = 30.0
WANT_ALL = [wf.CONTENTS, wf.STREAM_INFO, wf.SUBJECT_INFO, wf.FRAME_INFO, wf.LABELED_RECONS,
            wf.DEVICE_INFO, wf.VOLTAGE_FRAME, wf.GLOBAL_SEGMENTS, wf.LATENCY_INFO]


def small_scene() -> WireScene:
    positions = np.arange(50 * 2 * 3, dtype=float).reshape(50, 2, 3) + 1
    return WireScene(100.0, [WireSubject("A", ["m1", "m2"], positions),
                             WireSubject("B", ["m1", "m2"], positions + 10)],
                     [WireDevice("EMG", ["EMG1"], np.zeros((1000, 1)), 20)])


class RawClient:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)

    def send(self, *blocks: bytes) -> None:
        self.sock.sendall(wf.packet(blocks))

    def packet(self) -> list[wf.WireObject]:
        tag, length = struct.unpack("<II", self._exact(8))
        assert tag == wf.OBJECTS
        return list(wf.split_packet(self._exact(length)))

    def frame(self) -> tuple[int, list[wf.WireObject]]:
        """Next packet carrying a frame: (SDK frame number, its objects)."""
        while True:
            objects = self.packet()
            for item in objects:
                if item.type_id == wf.FRAME_INFO:
                    return struct.unpack("<I", item.body)[0] + 1, objects

    def _exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    # A generous backlog: pushed frames stay consecutive through long pauses of a loaded machine.
    with ViconWireServer(small_scene(), port=0, keepalive_s=0.2, max_backlog_s=60) as running:
        yield running


def test_first_the_supported_types_then_nothing_until_asked(server):
    client = RawClient(server.port)
    (first,) = client.packet()
    assert first.type_id == wf.OBJECT_ENUMS
    supported = wf.read_object_enums(first.body)
    assert set(WANT_ALL) <= supported
    client.send(wf.block(wf.OBJECT_ENUMS, wf.u32_set([wf.CONTENTS])))
    # Not streaming and nothing requested: only keep-alives come.
    assert [o.type_id for o in client.packet()] == [wf.KEEP_ALIVE]


def test_pull_gets_one_frame_with_static_objects_once(server):
    client = RawClient(server.port)
    client.packet()
    client.send(wf.block(wf.OBJECT_ENUMS, wf.u32_set(WANT_ALL)),
                wf.block(wf.REQUEST_FRAME, b"\x00"))
    _, objects = client.frame()
    kinds = [o.type_id for o in objects]
    assert kinds.count(wf.SUBJECT_INFO) == 2 and wf.STREAM_INFO in kinds
    assert wf.UNLABELED_RECONS not in kinds              # not asked for
    client.send(wf.block(wf.REQUEST_FRAME, b"\x00"))
    _, objects = client.frame()
    kinds = [o.type_id for o in objects]
    assert wf.SUBJECT_INFO not in kinds and kinds[0] == wf.CONTENTS
    contents = objects[0].body                          # empty table, then unchanged types
    assert struct.unpack_from("<I", contents)[0] == 0
    assert wf.Reader(contents[4:]).u32_set() == {wf.STREAM_INFO, wf.SUBJECT_INFO,
                                                 wf.DEVICE_INFO}


def test_push_streams_consecutive_frames_and_echoes_pings(server):
    client = RawClient(server.port)
    client.packet()
    client.send(wf.block(wf.OBJECT_ENUMS, wf.u32_set(WANT_ALL)),
                wf.block(wf.REQUEST_FRAME, b"\x01"))
    numbers = [client.frame()[0] for _ in range(20)]
    assert numbers == list(range(numbers[0], numbers[0] + 20))
    client.send(wf.block(wf.PING, struct.pack("<Q", 77)))
    assert wait_until(lambda: any(o.type_id == wf.PING and o.body == struct.pack("<Q", 77)
                                  for o in client.packet()), timeout=TIMEOUT_S)


def test_filter_leaves_out_other_subjects_and_devices(server):
    client = RawClient(server.port)
    client.packet()
    filters = struct.pack("<I", 2) + struct.pack("<I", wf.SUBJECT_INFO) + wf.u32_set([2]) + \
        struct.pack("<I", wf.VOLTAGE_FRAME) + wf.u32_set([])
    client.send(wf.block(wf.OBJECT_ENUMS, wf.u32_set(WANT_ALL)), wf.block(wf.FILTER, filters),
                wf.block(wf.REQUEST_FRAME, b"\x00"))
    _, objects = client.frame()
    subjects = [struct.unpack_from("<I", o.body)[0] for o in objects
                if o.type_id == wf.SUBJECT_INFO]
    assert subjects == [2]
    assert not [o for o in objects if o.type_id == wf.VOLTAGE_FRAME]
    assert [o for o in objects if o.type_id == wf.DEVICE_INFO]        # not filtered


def test_stall_skips_frames_and_drop_closes(server):
    client = RawClient(server.port)
    client.packet()
    client.send(wf.block(wf.OBJECT_ENUMS, wf.u32_set(WANT_ALL)),
                wf.block(wf.REQUEST_FRAME, b"\x01"))
    before = client.frame()[0]
    server.stall(0.5)
    stalled_at = server.current_frame()
    while True:                        # frames already on their way may still arrive
        number = client.frame()[0]
        if number > stalled_at:
            break
    assert number >= server.frame_at(server.stalled_until) > before
    assert server.drop_connections() == 1
    with pytest.raises((ConnectionError, OSError)):
        while True:
            client.packet()


def test_stop_and_start_reuse_the_port_and_the_clock(server):
    port = server.port
    server.stop()
    with pytest.raises(OSError):
        RawClient(port)
    stopped_at = server.current_frame()
    server.start()
    assert server.port == port
    client = RawClient(port)
    client.packet()
    client.send(wf.block(wf.OBJECT_ENUMS, wf.u32_set(WANT_ALL)),
                wf.block(wf.REQUEST_FRAME, b"\x00"))
    assert client.frame()[0] >= stopped_at


def test_garbage_closes_only_that_connection(server):
    bad = RawClient(server.port)
    bad.packet()
    bad.sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises((ConnectionError, OSError)):
        while True:
            bad.packet()
    good = RawClient(server.port)
    assert good.packet()[0].type_id == wf.OBJECT_ENUMS


@pytest.mark.integration
def test_command_line_help_and_bad_input():
    command = [sys.executable, "-m", "biosig_ros.devices.vicon_wire.cli"]
    shown = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--copy NAME:DX,DY,DZ" in shown.stdout
    missing = subprocess.run(command + ["no_such.c3d", "--port", "0"], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "vicon_wire_sim: configuration error: recording file not found: no_such.c3d"]
