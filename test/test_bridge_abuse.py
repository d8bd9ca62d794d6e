"""The legacy server under abuse (#11 item 7): hundreds of idle connections do not delay a
biosiglive client, a declared huge length allocates nothing, and crafted requests never print
a traceback or CPython's `SystemError: deallocated bytearray object has exported buffers`."""
import logging
import pickle
import random
import socket
import struct
import threading
import tracemalloc

import numpy as np
import pytest
from biosiglive import Client, Message

from biosig_ros.bridge.legacy_server import LegacyServer, ServerSettings, reply_from_buffers
from biosig_ros.bridge.ring_buffers import SourceBuffers
from test_bridge_hostile import raw_exchange
from ros_harness import wait_until

EMG = np.arange(40.0).reshape(2, 20)
Q8 = struct.Struct("<Q")


def serve(**overrides):
    buffers = SourceBuffers({"raw_device_data": [0]})
    buffers.push("raw_device_data", 0, EMG)
    settings = ServerSettings(**{"port": 0, **overrides})
    return LegacyServer(settings, lambda request: reply_from_buffers(buffers, request))


def good_client_requests(port, count, replies, errors):
    try:
        for _ in range(count):
            replies.append(Client("127.0.0.1", port, client_type="TCP").get_data(
                Message(command=["raw_device_data"], nb_frame_to_get=None)))
    except Exception as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def test_500_idle_connections_and_a_biosiglive_client_still_gets_every_reply():
    # request_timeout far above the test's length: only eviction can make room.
    with serve(request_timeout=120.0) as server:
        port = server.address[1]
        flood = []
        try:
            for _ in range(500):
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            replies, errors = [], []
            client = threading.Thread(target=good_client_requests, args=(port, 50, replies, errors))
            client.start()
            client.join(120)
            assert not client.is_alive(), "the biosiglive client is stuck"
            assert not errors, errors[:1]
            assert len(replies) == 50
            for reply in replies:
                np.testing.assert_array_equal(reply["raw_device_data"], EMG)
            assert server.stats.evicted >= 500 - server.settings.max_connections_per_peer
            assert server.stats.open_connections <= server.settings.max_connections_per_peer
        finally:
            for sock in flood:
                sock.close()


@pytest.mark.parametrize("payload", [
    b"\x80\x04\x95" + Q8.pack(2 ** 34) + b"}}}",          # 14 bytes: a 16 GiB frame
    b"\x80\x04\x8e" + Q8.pack(2 ** 34) + b"abc",          # 14 bytes: 16 GiB of BINBYTES8
    b"\x80\x05\x96" + Q8.pack(2 ** 34) + b"abc",          # 14 bytes: a 16 GiB bytearray
    b"\x80\x04Np999999999\n.",                           # a memo of a billion slots
])
def test_a_huge_declared_length_allocates_nothing(payload):
    with serve() as server:
        port = server.address[1]
        # the server thread's first allocations happen before tracing (an empty request,
        # closed at once rather than left to the request timeout)
        raw_exchange(port, b"", shutdown=True)
        tracemalloc.start()
        try:
            reply = raw_exchange(port, payload)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "error" in reply
        assert peak < 4 * 2 ** 20, f"{peak} bytes allocated"
        assert server.stats.error_replies == 1


_OPCODES = [b"\x96" + Q8.pack(3) + b"abc", b"\x96" + Q8.pack(2 ** 33), b"\x98", b"\x97", b"\x94",
            b"h\x00", b"j\x00\x00\x00\x00", b"0", b"2", b"(", b"1", b"]", b"}", b"e", b"a", b"s",
            b"u", b"t", b"\x85", b"\x86", b"\x8f", b"\x90", b"\x91", b"N", b"K\x01", b"l", b"d",
            b"C\x02ab", b"\x8e" + Q8.pack(2) + b"ab", b"\x95" + Q8.pack(5), b"\x8c\x01a",
            b"\x88", b"p0\n", b"g0\n", b"\x8a\x01\x01", b"\x95" + Q8.pack(2 ** 40),
            b"r\xff\xff\xff\x7f", b"cos\nsystem\n", b"R", b"\x93", b"\x81", b"b"]


def crafted_requests(seed: int, count: int):
    """Random opcode soups (the kind that made CPython print SystemError), mutated and cut
    real requests, and random bytes."""
    rng = random.Random(seed)
    real = pickle.dumps(Message(command=["raw_device_data"]).__dict__)
    for i in range(count):
        kind = i % 3
        if kind == 0:
            body = b"".join(rng.choice(_OPCODES) for _ in range(rng.randint(1, 10)))
            payload = rng.choice([b"\x80\x05", b"\x80\x04", b"\x80\x02", b""]) + body + b"."
        elif kind == 1:
            payload = bytearray(real)
            for _ in range(rng.randint(1, 4)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload[:rng.randint(1, len(payload))])
        else:
            payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        yield payload


def test_crafted_requests_never_print_a_traceback(capfd, caplog):
    caplog.set_level(logging.DEBUG)
    with serve(request_timeout=1.0, max_connections_per_peer=64) as server:
        port = server.address[1]
        payloads = list(crafted_requests(seed=11, count=300))
        pending = list(payloads)
        lock = threading.Lock()

        def sender():
            while True:
                with lock:
                    if not pending:
                        return
                    payload = pending.pop()
                raw_exchange(port, payload, shutdown=True)

        threads = [threading.Thread(target=sender) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert wait_until(lambda: server.stats.open_connections == 0, timeout=10)
        reply = Client("127.0.0.1", port, client_type="TCP").get_data(
            Message(command=["raw_device_data"], nb_frame_to_get=None))
        np.testing.assert_array_equal(reply["raw_device_data"], EMG)
        handled = server.stats.error_replies + server.stats.dropped + server.stats.replies
        assert handled >= len(payloads)
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text):
        assert "Traceback" not in text and "SystemError" not in text, text[-2000:]


@pytest.mark.integration
def test_the_node_process_logs_no_traceback_for_crafted_requests():
    from ros_harness import NodeProcess

    with NodeProcess("biosig_ros.nodes.bridge_node", "bridge",
                     {"port": 0, "request_timeout": 0.5}) as node:
        assert node.wait_for_output("serving biosiglive clients on"), node.output()
        port = int(node.output().split("serving biosiglive clients on 127.0.0.1:")[1].split()[0])
        for payload in crafted_requests(seed=12, count=150):
            raw_exchange(port, payload, shutdown=True)
        assert "error" in Client("127.0.0.1", port, client_type="TCP").get_data(Message())
        assert node.alive()
    output = node.output()
    assert "Traceback" not in output and "SystemError" not in output, output[-3000:]
