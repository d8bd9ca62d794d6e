"""The viewer messages from their templates (bytes) and without them (messages) say the same:
markers, hidden (occluded) markers where they were last seen, the skeleton's lines, stamps;
the per-channel envelope JointStates at their samples' capture times."""
import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from visualization_msgs.msg import MarkerArray

from biosig_ros.msg import SignalChunk
from biosig_ros.ros.viz_messages import ChannelStates, MarkerArrays

NAMES = ("STER", "XIPH", "C7", "CLAV_SC")


def both_paths(make):
    """(from the template, from the message fields) for one builder call."""
    built = make(template=True)
    plain = make(template=False)
    assert isinstance(built, bytes) and not isinstance(plain, bytes)
    return deserialize_message(built, type(plain)), plain


def marker_arrays(template: bool) -> "bytes | MarkerArray":
    viz = MarkerArrays("world", 0.02)
    rng = np.random.default_rng(3)
    frames = rng.normal(size=(3, len(NAMES), 3))
    frames[0, 2] = np.nan                       # C7 never seen yet in frame 0
    occluded = np.zeros((3, len(NAMES)), dtype=bool)
    occluded[1, 1] = True                       # XIPH hidden in frame 1 ...
    occluded[2, 1] = True                       # ... and 2: shown where frame 0 saw it
    for k in range(3):
        viz.update_markers(NAMES, frames[k], occluded[k], (1_700_000_000 + k, 5_000 * k))
    viz.update_skeleton((1_700_000_002, 7), rng.normal(size=(5, 2, 3)))
    if not template:  # the layout known, its template dropped: the message path
        viz.array()
        viz._template = None
    return viz.array()


def test_marker_array_from_the_template_is_the_message_built_field_by_field():
    from_template, from_fields = both_paths(marker_arrays)
    for array in (from_template, from_fields):
        spheres, lines = array.markers
        assert spheres.text.split(",") == list(NAMES) and len(lines.points) == 10
        assert [c.a for c in spheres.colors] == [1.0, 0.0, 1.0, 1.0]
        assert (spheres.header.stamp.sec, spheres.header.stamp.nanosec) == (1_700_000_002, 10_000)
        assert (lines.header.stamp.sec, lines.header.stamp.nanosec) == (1_700_000_002, 7)
    points = [[(p.x, p.y, p.z) for p in m.points] for m in from_template.markers]
    assert points == [[(p.x, p.y, p.z) for p in m.points] for m in from_fields.markers]
    rng = np.random.default_rng(3)
    frames = rng.normal(size=(3, len(NAMES), 3))
    assert points[0][1] == tuple(frames[0, 1])  # last seen
    assert points[0][2] == tuple(frames[2, 2])  # seen since frame 1
    assert points[0][0] == tuple(frames[2, 0])


def test_a_marker_never_seen_sits_at_a_seen_one_and_nothing_is_nan():
    viz = MarkerArrays("world", 0.02)
    positions = np.array([[np.nan] * 3, [1.0, 2.0, 3.0]])
    viz.update_markers(("A", "B"), positions, np.array([False, False]), (1, 2))
    array = deserialize_message(viz.array(), MarkerArray)
    spheres = array.markers[0]
    assert [(p.x, p.y, p.z) for p in spheres.points] == [(1.0, 2.0, 3.0)] * 2
    assert [c.a for c in spheres.colors] == [0.0, 1.0] and len(array.markers) == 1


def chunk(first: int, count: int = 20, channels=("BIC", "TRI", "DELT")):
    msg = SignalChunk(channel_names=list(channels), unit="", sample_rate=2000.0,
                      first_sample_index=first, sample_count=count)
    msg.header.frame_id = "world"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 999_990_000
    data = np.arange(count * len(channels), dtype=float).reshape(count, -1) + first
    msg.data = data.ravel().tolist()
    return msg, data


def test_channel_states_from_the_template_and_without_it_say_the_same():
    msg, data = chunk(40)
    states = ChannelStates(100.0)
    built = states.messages(msg, data)
    states._template = None
    plain = states.messages(msg, data)
    assert len(built) == len(plain) == 1 and isinstance(built[0], bytes)
    for state in (deserialize_message(built[0], JointState), plain[0]):
        assert list(state.name) == ["BIC", "TRI", "DELT"] and state.header.frame_id == "world"
        assert list(state.position) == data[19].tolist()  # index 59: the newest of each 20
        # 19 samples of 0.5 ms after the chunk's stamp, across a second boundary
        assert (state.header.stamp.sec, state.header.stamp.nanosec) == (1_700_000_001, 9_490_000)


def test_channel_states_follow_a_new_channel_layout():
    states = ChannelStates(0.0)  # every sample
    first = states.messages(*chunk(0, count=2))
    renamed = states.messages(*chunk(2, count=2, channels=("A", "B")))
    assert len(first) == len(renamed) == 2
    assert list(deserialize_message(renamed[1], JointState).name) == ["A", "B"]
    assert list(deserialize_message(first[1], JointState).position) == [3.0, 4.0, 5.0]
