"""MarkerSetReader: the fields of a MarkerSet read from the bytes rclpy serializes are those of
the message, whatever the string lengths (alignment), sizes and values; bytes that end early or
lie about a length give ValueError, never a wrong frame."""
import math

import numpy as np
import pytest
from geometry_msgs.msg import Point
from rclpy.serialization import serialize_message

from biosig_ros.msg import MarkerSet
from biosig_ros.ros.cdr_reader import MarkerSetReader


def marker_set(names, positions, occluded=None, subject="S1", frame_id="world", number=7):
    msg = MarkerSet()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789_012
    msg.header.frame_id = frame_id
    msg.subject = subject
    msg.frame_number = number
    msg.frame_rate = 100.0
    msg.marker_names = list(names)
    msg.positions = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in positions]
    msg.occluded = [bool(v) for v in occluded] if occluded is not None else []
    return msg


def assert_reads_as(view, msg):
    assert (view.sec, view.nanosec) == (msg.header.stamp.sec, msg.header.stamp.nanosec)
    assert view.frame_id == msg.header.frame_id and view.subject == msg.subject
    assert view.frame_number == msg.frame_number and view.frame_rate == msg.frame_rate
    assert list(view.names) == list(msg.marker_names)
    expected = np.array([(p.x, p.y, p.z) for p in msg.positions]).reshape(-1, 3)
    np.testing.assert_array_equal(view.positions, expected)  # NaN where NaN
    flags = list(msg.occluded) or [False] * len(msg.positions)
    assert view.occluded.tolist() == flags


@pytest.mark.parametrize("count", [0, 1, 3, 51])
def test_fields_are_the_messages_for_every_string_length(count):
    rng = np.random.default_rng(count)
    reader = MarkerSetReader()
    for text_length in range(9):
        names = [("m" * (1 + (i + text_length) % 6)) + str(i) for i in range(count)]
        positions = rng.normal(size=(count, 3))
        if count:
            positions[0, 1] = math.nan
        occluded = rng.random(count) < 0.3 if text_length % 2 else None
        msg = marker_set(names, positions, occluded, subject="s" * text_length,
                         frame_id="f" * (8 - text_length), number=2**40 + text_length)
        assert_reads_as(reader.read(serialize_message(msg)), msg)


def test_names_are_reused_while_their_bytes_stay_the_same_and_follow_a_change():
    reader = MarkerSetReader()
    first = reader.read(serialize_message(marker_set(["A", "BB"], np.zeros((2, 3)))))
    second = reader.read(serialize_message(marker_set(["A", "BB"], np.ones((2, 3)),
                                                       subject="longer subject")))
    assert second.names is first.names and second.positions[1, 2] == 1.0
    # the alignment padding after "A" (rclpy leaves it unset) changes nothing
    data = bytearray(serialize_message(marker_set(["A", "BB"], np.ones((2, 3)))))
    padding = data.index(b"\x02\x00\x00\x00A\x00") + 6  # after the first name's text
    for value in (0x00, 0x5A, 0xFF):
        data[padding] = value
        third = reader.read(bytes(data))
        assert third.names is first.names and third.positions.shape == (2, 3)
    renamed = reader.read(serialize_message(marker_set(["A", "BC"], np.ones((2, 3)))))
    assert renamed.names == ("A", "BC")
    longer = reader.read(serialize_message(marker_set(["A", "BB", "C"], np.ones((3, 3)))))
    assert longer.names == ("A", "BB", "C") and longer.positions.shape == (3, 3)


def test_every_truncation_and_a_lying_length_give_value_error():
    msg = marker_set(["LASIS", "RASIS", "X"], np.arange(9.0).reshape(3, 3), [False, True, False])
    data = serialize_message(msg)
    whole = MarkerSetReader().read(data)
    for cut in range(len(data)):
        try:
            view = MarkerSetReader().read(data[:cut])
        except ValueError:
            continue
        # a cut that removes only trailing padding may still read: then it reads the same
        assert view.names == whole.names and view.positions.tolist() == whole.positions.tolist()
    huge = bytearray(data)
    names_count_at = data.index(b"LASIS") - 8  # the count before the first name's length
    huge[names_count_at:names_count_at + 4] = (2**31).to_bytes(4, "little")
    with pytest.raises(ValueError):
        MarkerSetReader().read(bytes(huge))
    with pytest.raises(ValueError):
        MarkerSetReader().read(b"\x01\x00" + data[2:])  # big-endian CDR: not read here


def test_names_positions_and_flags_of_different_lengths_are_refused():
    msg = marker_set(["A", "B"], np.zeros((2, 3)), [True, False, True])
    with pytest.raises(ValueError, match="2 names, 2 positions, 3 occluded flags"):
        MarkerSetReader().read(serialize_message(msg))
