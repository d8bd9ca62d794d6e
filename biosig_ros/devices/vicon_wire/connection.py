"""One client connection of the wire simulator: a reader thread for requests, a writer thread
for everything sent (so sends never interleave).

What a connection does, following Vicon's client (ViconCGStreamClient.cpp): on connect it sends
the object types it supports (ObjectEnums); the client answers with the types it wants. A
RequestFrame(true) starts ServerPush (every frame at the rate); RequestFrame(false) stops it
and asks for the current frame (ClientPull, one per GetFrame); RequestNextFrame asks for the
frame after the last one sent, once it is due (ClientPullPreFetch: consecutive frames however
slow the client, within max_backlog). Pings are echoed at once (the SDK derives its network
latency from them), a Filter selects subjects/devices by id, haptics and multicast requests
are ignored. The static objects (stream, subject, device and channel info) go out with the
first frame and again after the wanted types or the filter change; other frames list them as
unchanged in Contents. Vicon's client writes its pending requests only after it has read a
packet, so an idle connection gets a KeepAlive packet now and then.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

from biosig_ros.devices.vicon_wire import objects as obj
from biosig_ros.devices.vicon_wire import wire_format as wf
from biosig_ros.devices.vicon_wire.scene import Item

if TYPE_CHECKING:
    from biosig_ros.devices.vicon_wire.server import ViconWireServer

FILTER_NA = 0xFFFFFFFF
# What the writer does next.
SEND_FRAME, SEND_PINGS, SEND_KEEP_ALIVE, WAIT = "frame", "pings", "keep-alive", "wait"
STATIC_TYPES = frozenset({wf.STREAM_INFO, wf.APPLICATION_INFO, wf.SUBJECT_INFO, wf.DEVICE_INFO,
                          wf.CHANNEL_INFO, wf.CHANNEL_INFO_EXTRA})


class Connection:
    def __init__(self, server: "ViconWireServer", sock: socket.socket, address):
        self.server = server
        self.sock = sock
        self.address = address
        self.closed = threading.Event()
        self._wake = threading.Condition()
        self.wanted: set[int] | None = None       # None until the client says what it wants
        self.filters: dict[int, set[int]] = {}
        self.streaming = False
        self.pull_requests = 0
        self.next_requests = 0
        self.pings: list[int] = []
        self.static_due = True
        self.last_frame: int | None = None
        self.drop_mid_frame = False
        self.frames_sent = 0
        self._last_send = time.monotonic()
        self._threads = [threading.Thread(target=self._read_loop, daemon=True,
                                          name=f"vicon-wire-read-{address[1]}"),
                         threading.Thread(target=self._write_loop, daemon=True,
                                          name=f"vicon-wire-write-{address[1]}")]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.wake()

    def join(self, timeout: float = 2.0) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- requests ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        try:
            while not self.closed.is_set():
                header = self._recv_exact(wf.HEADER.size)
                tag, length = wf.HEADER.unpack(header)
                if tag != wf.OBJECTS or length > wf.MAX_PACKET:
                    self.server.log(f"{self.address}: not a DataStream packet (tag {tag:#x}, "
                                    f"{length} bytes): closing")
                    break
                for item in wf.split_packet(self._recv_exact(length)):
                    self._handle(item)
        except (OSError, ConnectionError, wf.WireError) as error:
            if not self.closed.is_set() and not isinstance(error, ConnectionError):
                self.server.log(f"{self.address}: {error}")
        finally:
            self.close()

    def _recv_exact(self, count: int) -> bytes:
        chunks, remaining = [], count
        while remaining:
            chunk = self.sock.recv(remaining)
            if not chunk:
                raise ConnectionError("client closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _handle(self, item: wf.WireObject) -> None:
        with self._wake:
            if item.type_id == wf.OBJECT_ENUMS:
                self.wanted = wf.read_object_enums(item.body)
                self.static_due = True
            elif item.type_id == wf.REQUEST_FRAME:
                self.streaming = wf.read_request_frame(item.body)
                if not self.streaming:
                    self.pull_requests += 1
            elif item.type_id == wf.REQUEST_NEXT_FRAME:
                self.next_requests += 1
            elif item.type_id == wf.PING:
                self.pings.append(wf.read_ping(item.body))
            elif item.type_id == wf.FILTER:
                self.filters = wf.read_filter(item.body)
                self.static_due = True
            # ApexHaptics, multicast start/stop and anything newer: ignored, as a server
            # without those features would.
            self._wake.notify_all()

    # -- sending -------------------------------------------------------------------------
    def _write_loop(self) -> None:
        server = self.server
        try:
            self._send(wf.packet([wf.block(wf.OBJECT_ENUMS,
                                           obj.object_enums(server.supported_types))]))
            while not self.closed.is_set():
                with self._wake:        # decide and wait under one lock: no wake-up is lost
                    action, value = self._next_action()
                    if action == WAIT:
                        self._wake.wait(max(0.0, value - time.monotonic()))
                        continue
                    if action == SEND_PINGS:
                        pings, self.pings = self.pings, []
                if action == SEND_KEEP_ALIVE:
                    self._send(wf.packet([wf.block(wf.KEEP_ALIVE, b"")]))
                elif action == SEND_PINGS:
                    self._send(wf.packet(wf.block(wf.PING, obj.ping(p)) for p in pings))
                else:
                    self._send_frame(value)
        except OSError:
            pass
        finally:
            self.close()

    def _next_action(self) -> tuple[str, float]:
        """(SEND_FRAME, frame number), (SEND_PINGS | SEND_KEEP_ALIVE, 0) or (WAIT, until when);
        called with the lock held."""
        server = self.server
        now = time.monotonic()
        stalled_until = server.stalled_until
        if now < stalled_until:
            return WAIT, stalled_until
        current = server.frame_at(now)
        next_due = server.frame_time(current + 1)
        with self._wake:
            if self.pings:
                return SEND_PINGS, 0
            if self.wanted is not None:
                if self.pull_requests:
                    self.pull_requests -= 1
                    return SEND_FRAME, current
                newer = self.last_frame is None or current > self.last_frame
                if self.streaming and newer:
                    return SEND_FRAME, self._catch_up(current)
                if self.next_requests and newer:
                    self.next_requests -= 1
                    return SEND_FRAME, self._catch_up(current)
            keepalive_at = self._last_send + server.keepalive_s
            if now >= keepalive_at:
                return SEND_KEEP_ALIVE, 0
            return WAIT, min(next_due, keepalive_at)

    def _catch_up(self, current: int) -> int:
        """The frame to send: the one after the last sent, unless that is too far behind."""
        server = self.server
        if self.last_frame is None or current - self.last_frame > server.max_backlog \
                or server.frame_time(self.last_frame + 1) < server.stalled_until:
            return current          # frames of a stall are skipped, not sent in a burst
        return self.last_frame + 1

    def _send_frame(self, frame: int) -> None:
        server = self.server
        with self._wake:
            wanted, filters, static_due = self.wanted, self.filters, self.static_due
            self.static_due = False
        items: list[Item] = []
        if static_due:
            items.extend(server.builder.static_items)
        items.extend(server.builder.frame_items(frame))
        latency = max(0.0, time.monotonic() - server.frame_time(frame))
        items.append(Item(wf.LATENCY_INFO, wf.block(wf.LATENCY_INFO, obj.latency_info(
            [("Simulator", latency)]))))
        blocks = [item.data for item in items
                  if item.type_id in wanted and _allowed(filters, item)]
        if wf.CONTENTS in wanted:
            unchanged = [] if static_due else sorted(STATIC_TYPES & wanted)
            blocks.insert(0, wf.block(wf.CONTENTS, obj.contents(unchanged)))
        data = wf.packet(blocks)
        if self.drop_mid_frame:
            self.sock.sendall(data[:len(data) // 2])
            self.close()
            return
        self._send(data)
        self.last_frame = frame
        self.frames_sent += 1

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self._last_send = time.monotonic()


def _allowed(filters: dict[int, set[int]], item: Item) -> bool:
    """Vicon's VFilter::Allow: a type in the filter passes only the ids listed for it."""
    allowed = filters.get(item.type_id)
    if allowed is None:
        return True
    return (FILTER_NA if item.filter_id is None else item.filter_id) in allowed
