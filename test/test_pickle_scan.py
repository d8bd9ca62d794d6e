"""The opcode walk that runs before any request is unpickled: it finds the end of a real
request in any piece size, and refuses declared sizes, memo indices, frame straddles and
opcodes a plain request never needs, without allocating what they declare."""
import pickle
import struct
import tracemalloc

import pytest
from biosiglive import Message

from biosig_ros.bridge.legacy_protocol import RequestError
from biosig_ros.bridge.pickle_scan import PickleScan

LIMIT = 8192
Q8 = struct.Struct("<Q")


@pytest.mark.parametrize("protocol", range(6))
def test_a_real_request_completes_exactly_at_its_stop_in_any_pieces(protocol):
    data = pickle.dumps(Message(command=["proc_device_data"], nb_frame_to_get=10,
                                down_sampling={"proc_device_data": 5}).__dict__, protocol)
    scan = PickleScan(LIMIT)
    states = [scan.feed(data[:end]) for end in range(len(data) + 1)]
    assert states.index(True) == len(data) and all(states[len(data):])
    assert scan.pos == len(data)
    whole = PickleScan(LIMIT)
    assert whole.feed(data + b"trailing") and whole.pos == len(data)


@pytest.mark.parametrize("payload, reason", [
    (b"\x80\x04\x95" + Q8.pack(2 ** 34) + b"}", "frame ending at byte"),
    (b"\x80\x02\x95" + Q8.pack(2 ** 34) + b"}", "frame ending at byte"),   # frame under proto 2
    (b"\x80\x04\x8e" + Q8.pack(2 ** 34) + b"ab", "BINBYTES8"),
    (b"\x80\x04\x8d" + Q8.pack(2 ** 34) + b"ab", "BINUNICODE8"),
    (b"\x80\x04N" + b"X" + struct.pack("<I", 2 ** 31) + b"a", "BINUNICODE"),
    (b"\x80\x05\x96" + Q8.pack(3) + b"abc.", "BYTEARRAY8"),
    (b"\x80\x05N\x98.", "READONLY_BUFFER"),
    (b"\x80\x04Np999999999\n.", "memo index 999999999"),
    (b"\x80\x04Nr\xff\xff\xff\x7f.", "memo index"),
    (b"\x80\x05\x95" + Q8.pack(5) + b"\x8e" + Q8.pack(3) + b"abc.", "crosses the end"),
    (b"\xff", "not a pickle opcode"),
])
def test_crafted_declarations_are_refused_before_any_allocation(payload, reason):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(RequestError, match=reason):
            PickleScan(LIMIT).feed(payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak


@pytest.mark.parametrize("protocol", range(6))
def test_a_pickle_naming_a_global_is_walked_in_step_with_the_unpickler(protocol, tmp_path):
    """GLOBAL / INST carry two lines: walked as one argument, the global is then refused by
    name by the unpickler (not misread as opcodes by the walk)."""
    from biosig_ros.bridge.legacy_protocol import try_decode_request
    from hostile_payloads import RunsCode

    data = pickle.dumps({"command": RunsCode(tmp_path / "ran")}, protocol)
    scan = PickleScan(LIMIT)
    assert scan.feed(data) and scan.pos == len(data)
    with pytest.raises(RequestError, match="refused to load global"):
        try_decode_request(data)
    assert not (tmp_path / "ran").exists()


def test_the_walk_resumes_instead_of_restarting():
    data = pickle.dumps({"custom_cmd": ["x" * 50] * 20, "command": ["all"]}, 2)
    scan = PickleScan(LIMIT)
    positions = []
    for end in range(1, len(data) + 1):
        scan.feed(data[:end])
        positions.append(scan.pos)
    assert positions == sorted(positions) and positions[-1] == len(data)
