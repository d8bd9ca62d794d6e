"""The biosiglive protocol without sockets: request decoding, reply selection against
biosiglive's own _prepare_data, reply encoding, and the ring buffers that feed it."""
import itertools
import pickle
import pickletools
import struct

import numpy as np
import pytest
from biosiglive import Message
from biosiglive.streaming.server import Connection

from biosig_ros.bridge.legacy_protocol import (
    LegacyRequest, RequestError, encode_error, encode_reply, parse_request,
    select, try_decode_request)
from biosig_ros.bridge.ring_buffers import RingBuffer, SourceBuffers

from assertions import assert_same
from hostile_payloads import RunsCode


def sample_data():
    """StreamData-like data: two EMG devices (one with a single channel), markers, q."""
    rng = np.random.default_rng(3)
    return {
        "proc_device_data": [rng.normal(size=(5, 40)), rng.normal(size=(1, 40))],
        "raw_device_data": [rng.normal(size=(5, 20)), rng.normal(size=(1, 20))],
        "kinematics_data": [rng.normal(size=(1, 30))],
        "marker_set_data": [rng.normal(size=(3, 4, 1))],
    }


COMMANDS = [["proc_device_data"], ["raw_device_data"], ["kinematics_data"], ["marker_set_data"],
            ["raw_device_data", "kinematics_data"], ["kinematics_data", "marker_set_data"],
            ["proc_device_data", "raw_device_data", "kinematics_data", "marker_set_data"],
            ["marker_set_data", "raw_device_data"], []]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("frames", [None, 0, 1, 7, 10_000])
@pytest.mark.parametrize("down_sampling", [None, {"proc_device_data": 3, "raw_device_data": 1},
                                           {"kinematics_data": 4, "marker_set_data": 2}])
def test_select_matches_biosiglive_prepare_data(command, frames, down_sampling):
    data = sample_data()
    expected = Connection._prepare_data(command, data, down_sampling, frames)
    request = parse_request(Message(command=command, nb_frame_to_get=frames,
                                    down_sampling=down_sampling).__dict__)
    assert_same(select(data, request), expected)


@pytest.mark.parametrize("frames", [None, 1, 5])
def test_all_as_string_and_as_list_match_biosiglive_all(frames):
    data = sample_data()
    expected = Connection._prepare_data("all", data, None, frames)
    for command in ("all", ["all"]):
        message = {"command": command, "nb_frames_to_get": frames, "down_sampling": None}
        assert_same(select(data, parse_request(message)), expected)
    # biosiglive's own server rejects the list that Message() sends by default.
    with pytest.raises(ValueError):
        Connection._prepare_data(["all"], data, None, frames)


def test_unwrap_quirk_one_channel_device_loses_its_first_dimension():
    data = {"kinematics_data": [np.arange(6.0).reshape(1, 6)],
            "marker_set_data": [np.zeros((3, 2, 1))]}
    alone = select(data, parse_request(Message(command=["kinematics_data"], nb_frame_to_get=None).__dict__))
    assert alone["kinematics_data"].shape == (1, 6)
    followed = select(data, parse_request(
        Message(command=["kinematics_data", "marker_set_data"], nb_frame_to_get=None).__dict__))
    assert followed["kinematics_data"].shape == (6,)
    assert followed["marker_set_data"].shape == (3, 2, 1)


def test_unwrap_down_to_a_scalar_where_biosiglive_crashes():
    data = {"a": [np.array([[4.0]])], "b": [np.zeros((2, 1))], "c": [np.zeros((2, 1))],
            "d": [np.zeros((2, 1))]}
    command = ["a", "b", "c", "d"]
    with pytest.raises(TypeError):
        Connection._prepare_data(command, data, None, 1)
    reply = select(data, LegacyRequest(tuple(command)))
    assert reply["a"] == 4.0 and np.ndim(reply["a"]) == 0


@pytest.mark.parametrize("message, text", [
    ({"command": ["nope"], "nb_frames_to_get": 1, "down_sampling": None}, "'nope' is not served"),
    ({"command": ["all"], "nb_frames_to_get": 1}, "missing down_sampling"),
    ({}, "missing command, nb_frames_to_get, down_sampling"),
    ([1, 2], "must be a dict"),
    ({"command": 5, "nb_frames_to_get": 1, "down_sampling": None}, "'command' must be"),
    ({"command": [5], "nb_frames_to_get": 1, "down_sampling": None}, "entries must be strings"),
    ({"command": ["all", "raw_device_data"], "nb_frames_to_get": 1, "down_sampling": None},
     "'all' must be the only"),
    ({"command": ["all"], "nb_frames_to_get": -1, "down_sampling": None}, "non-negative int"),
    ({"command": ["all"], "nb_frames_to_get": 2.5, "down_sampling": None}, "non-negative int"),
    ({"command": ["all"], "nb_frames_to_get": 1, "down_sampling": [1]}, "must be a dict"),
    ({"command": ["all"], "nb_frames_to_get": 1, "down_sampling": {"raw_device_data": 0}},
     "positive int"),
    ({"command": ["all"], "nb_frames_to_get": 1, "down_sampling": {"raw_device_data": 2.0}},
     "positive int"),
    ({"command": ["all"], "nb_frames_to_get": 1, "down_sampling": {"x" * 500: -2}}, "x" * 60 + "..."),
])
def test_invalid_requests_are_named(message, text):
    with pytest.raises(RequestError, match=None) as error:
        select(sample_data(), parse_request(message))
    assert text in str(error.value)


def test_a_bare_key_string_means_that_key():
    request = parse_request({"command": "raw_device_data", "nb_frames_to_get": 2, "down_sampling": None})
    assert request.command == ("raw_device_data",)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_prefix_of_a_request_is_incomplete_and_the_whole_decodes(protocol):
    message = Message(command=["proc_device_data", "raw_device_data"], nb_frame_to_get=10,
                      down_sampling={"proc_device_data": 5}, custom_cmd=[1.5, "x", None]).__dict__
    data = pickle.dumps(message, protocol=protocol)
    for end in range(len(data)):
        assert try_decode_request(data[:end]) is None, end
    request = try_decode_request(data)
    assert request == LegacyRequest(("proc_device_data", "raw_device_data"), 10, {"proc_device_data": 5})
    # Bytes after the pickle's end are ignored, as biosiglive's pickle.loads does.
    assert try_decode_request(data + b"trailing") == request


def test_the_documented_example_request():
    data = pickle.dumps(Message(command=["proc_device_data"], nb_frame_to_get=10,
                                down_sampling={"proc_device_data": 5}).__dict__)
    assert len(data) == 106 and data[:4] == bytes.fromhex("8004955f")
    assert try_decode_request(data).down_sampling == {"proc_device_data": 5}


def test_a_pickle_that_would_run_code_is_refused_before_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"command": ["all"], "nb_frames_to_get": 1, "down_sampling": None,
                            "custom_cmd": RunsCode(marker)})
    with pytest.raises(RequestError, match="refused to load global"):
        try_decode_request(payload)
    assert not marker.exists()


@pytest.mark.parametrize("garbage", [b"hello world", b"\x00\x01\x02", b"GET / HTTP/1.1\r\n\r\n",
                                     b"\x80\x04K\x01K\x02\x00."])
def test_garbage_is_an_error(garbage):
    with pytest.raises(RequestError):
        try_decode_request(garbage)


def test_reply_is_length_prefixed_protocol_4_with_numpy1_names():
    data = sample_data()
    reply = select(data, parse_request(Message(command=["proc_device_data", "marker_set_data"],
                                               nb_frame_to_get=None).__dict__))
    encoded = encode_reply(reply)
    (length,) = struct.unpack(">I", encoded[:4])
    assert length == len(encoded) - 4
    payload = encoded[4:]
    assert payload[:2] == b"\x80\x04"
    assert_same(pickle.loads(payload), reply)
    names = _global_names(payload)
    assert names == {("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                     ("numpy", "ndarray"), ("numpy", "dtype")}
    assert b"numpy._core" not in payload


def test_error_reply():
    encoded = encode_error("bad thing")
    assert pickle.loads(encoded[4:]) == {"error": "bad thing"}


def _global_names(payload: bytes) -> set:
    """(module, name) of every global a pickle loads, following its memo."""
    names, stack, memo = set(), [], []
    for opcode, arg, _ in pickletools.genops(payload):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            stack.append(arg)
        elif opcode.name in ("BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif opcode.name == "MEMOIZE":
            memo.append(stack[-1] if stack else None)
        elif opcode.name == "STACK_GLOBAL":
            names.add((stack[-2], stack[-1]))
            stack.append(None)
        elif opcode.name == "GLOBAL":
            names.add(tuple(arg.split(" ")))
        else:
            stack.append(None)  # only the strings right before STACK_GLOBAL matter
    return names


# --- ring buffers ---------------------------------------------------------------------------
@pytest.mark.parametrize("capacity", [1, 3, 7, 20])
def test_ring_buffer_window_is_the_last_samples_in_order(capacity):
    buffer = RingBuffer(capacity)
    assert buffer.window() is None
    pushed = np.zeros((2, 0))
    rng = np.random.default_rng(capacity)
    for size in itertools.islice(itertools.cycle([1, 2, 5, 9, 30, 3]), 40):
        chunk = rng.normal(size=(2, size))
        buffer.push(chunk)
        pushed = np.concatenate([pushed, chunk], axis=1)
        np.testing.assert_array_equal(buffer.window(), pushed[:, -capacity:])
    assert buffer.total == pushed.shape[1]


def test_ring_buffer_three_dimensional_markers():
    buffer = RingBuffer(4)
    frames = [np.full((3, 2, 1), float(i)) for i in range(6)]
    for frame in frames:
        buffer.push(frame)
    np.testing.assert_array_equal(buffer.window(), np.concatenate(frames[-4:], axis=-1))


def test_newest_chunk_buffer_and_channel_change():
    buffer = RingBuffer(0)
    buffer.push(np.ones((2, 20)))
    buffer.push(np.full((2, 27), 2.0))
    np.testing.assert_array_equal(buffer.window(), np.full((2, 27), 2.0))
    buffer.push(np.zeros((3, 5)))
    assert buffer.window().shape == (3, 5) and buffer.resets == 1
    ring = RingBuffer(5)
    ring.push(np.ones((2, 4)))
    ring.push(np.zeros((3, 2)))
    assert ring.window().shape == (3, 2) and ring.resets == 1


def test_source_buffers_serve_only_keys_whose_sources_all_have_data():
    buffers = SourceBuffers({"raw_device_data": [0, 0], "kinematics_data": [10], "marker_set_data": []})
    assert buffers.keys == ["raw_device_data", "kinematics_data"]
    buffers.push("raw_device_data", 0, np.ones((2, 3)))
    buffers.push("kinematics_data", 0, np.ones((4, 1)))
    with buffers.lock:
        assert list(buffers.views()) == ["kinematics_data"]
    assert buffers.waiting_for() == ["raw_device_data"]
    buffers.push("raw_device_data", 1, np.ones((1, 3)))
    with buffers.lock:
        assert list(buffers.views()) == ["raw_device_data", "kinematics_data"]
