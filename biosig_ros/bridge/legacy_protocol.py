"""The biosiglive 2.0.3 TCP protocol, without sockets: parse a request, build the reply bytes.

A request is `pickle.dumps(Message.__dict__)` with no length prefix:
`{"command": [keys] | "all", "nb_frames_to_get": int | None, "down_sampling": {key: int} | None,
"custom_cmd": ...}`. A reply is a 4-byte big-endian length followed by a protocol-4 pickle of
a dict {key: value}, value being the list of arrays of that key (one per device or marker
set), each down-sampled (`d[..., ::k]`) then trimmed to its last nb_frames_to_get samples, and
a one-element list replaced by its array, the way biosiglive's Connection._prepare_data does,
including its quirk (see select()).

Requests are unpickled only by pickle_compat.loads_plain (no globals: plain data only).
Differences from biosiglive's server, all on inputs it crashes on: the list ["all"] (what
Message() sends) means every key like the string "all"; a bare key string means [key];
invalid values (non-int or non-positive down-sampling, negative or non-int nb_frames_to_get,
unknown keys, a non-dict request) get an error reply `{"error": "<message>"}` instead of
killing the server.
"""
from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field

import numpy as np

from biosig_ros.io.pickle_compat import dumps_portable, loads_plain

# The keys biosiglive's StreamData serves, in the order its data dict holds them ("all" follows
# this order, which matters for the unwrap quirk).
DATA_KEYS = ("proc_device_data", "raw_device_data", "kinematics_data", "marker_set_data")
REQUIRED_FIELDS = ("command", "nb_frames_to_get", "down_sampling")
ERROR_KEY = "error"
REPLY_PROTOCOL = 4  # biosiglive replies with pickle.dumps' default, which NumPy 1.x peers read
_HEADER = struct.Struct(">I")
_MAX_NAME_IN_MESSAGE = 60


class RequestError(ValueError):
    """The request cannot be served; the message is sent back to the client."""


@dataclass(frozen=True)
class LegacyRequest:
    """A validated request. command None means every key ("all")."""

    command: tuple[str, ...] | None
    nb_frames_to_get: int | None = 1
    down_sampling: dict[str, int] = field(default_factory=dict)


def _name(value) -> str:
    """A short printable form of a client-supplied key (never repr() a whole request: a pickle
    can describe a structure whose repr is exponentially long)."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_NAME_IN_MESSAGE else value[:_MAX_NAME_IN_MESSAGE] + "..."
    return f"<{type(value).__name__}>"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_request(message) -> LegacyRequest:
    """Validate an unpickled request dict; raise RequestError naming what is wrong."""
    if not isinstance(message, dict):
        raise RequestError("request must be a dict (Message.__dict__), "
                           f"got {type(message).__name__}")
    missing = [key for key in REQUIRED_FIELDS if key not in message]
    if missing:
        raise RequestError(f"request is missing {', '.join(missing)} (send Message(...).__dict__)")

    command = message["command"]
    if isinstance(command, str):
        command = [command]
    if not isinstance(command, (list, tuple)):
        raise RequestError("'command' must be a list of keys or 'all', "
                           f"got {type(command).__name__}")
    for key in command:
        if not isinstance(key, str):
            raise RequestError(f"'command' entries must be strings, got {_name(key)}")
    if "all" in command:
        if len(command) != 1:
            raise RequestError("'all' must be the only entry of 'command'")
        keys = None
    else:
        keys = tuple(command)

    frames = message["nb_frames_to_get"]
    if frames is not None and (not _is_int(frames) or frames < 0):
        raise RequestError("'nb_frames_to_get' must be a non-negative int or None, got "
                           + (_name(frames) if not _is_int(frames) else str(frames)))

    down_sampling = message["down_sampling"] or {}
    if not isinstance(down_sampling, dict):
        raise RequestError(f"'down_sampling' must be a dict {{key: int}} or None, "
                           f"got {type(down_sampling).__name__}")
    steps: dict[str, int] = {}
    for key, step in down_sampling.items():
        if not isinstance(key, str):
            raise RequestError(f"'down_sampling' keys must be strings, got {_name(key)}")
        if not _is_int(step) or step < 1:
            raise RequestError(f"down_sampling['{_name(key)}'] must be a positive int, "
                               f"got {step if _is_int(step) else _name(step)}")
        steps[key] = step
    return LegacyRequest(keys, frames, steps)


def try_decode_request(buffer: bytes) -> LegacyRequest | None:
    """Decode the bytes received so far: None when the pickle is not complete yet; a
    LegacyRequest when it is (bytes after its end are ignored, like biosiglive); RequestError
    for anything that is not a plain-data pickle."""
    if not buffer:
        return None
    try:
        message = loads_plain(buffer)
    except EOFError:
        return None
    except pickle.UnpicklingError as error:
        if "truncated" in str(error):
            return None
        raise RequestError(f"request is not a plain-data pickle: {error}") from None
    except RecursionError:
        raise RequestError("request is nested too deeply") from None
    except MemoryError:
        raise RequestError("request is too large to decode") from None
    except Exception as error:  # noqa: BLE001 - any other decoding failure is the client's
        raise RequestError(f"request is not a valid pickle: {type(error).__name__}: "
                           f"{str(error)[:120]}") from None
    return parse_request(message)


def _unwrap_single(value):
    """biosiglive's `if len(v) == 1: v = v[0]`; a value without len() (a numpy scalar, which
    biosiglive's server crashes on) is left as it is."""
    try:
        return value[0] if len(value) == 1 else value
    except TypeError:
        return value


def select(data: dict[str, list[np.ndarray]], request: LegacyRequest) -> dict:
    """The reply dict for a request, computed like biosiglive's Connection._prepare_data.

    data maps each available key to its list of arrays (samples on the last axis). The
    one-element unwrap runs over every key already in the reply after each requested key, as
    in biosiglive: an array whose first dimension is 1 loses it once per later key.
    """
    if request.command is None:
        keys = [key for key in DATA_KEYS if key in data] + [k for k in data if k not in DATA_KEYS]
    else:
        keys = list(request.command)
    reply: dict = {}
    for key in keys:
        if key not in data:
            raise RequestError(f"the asked data '{_name(key)}' is not served "
                               f"(available: {', '.join(data) or 'nothing yet'})")
        step = request.down_sampling.get(key)
        values = []
        for array in data[key]:
            if step is not None:
                array = array[..., ::step]
            if request.nb_frames_to_get:
                array = array[..., -request.nb_frames_to_get:]
            values.append(array)
        reply[key] = values
        for served in reply:
            reply[served] = _unwrap_single(reply[served])
    return reply


def encode_reply(reply: dict) -> bytes:
    """Length-prefixed protocol-4 pickle, loadable by NumPy 1.x and 2.x clients."""
    payload = dumps_portable(reply, protocol=REPLY_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def encode_error(message: str) -> bytes:
    return encode_reply({ERROR_KEY: message})
