"""CdrTemplate: bytes filled in place read back (rclpy's deserializer) as the same message that
rclpy would serialize from the values; the alignment padding, which rclpy leaves unset, aside."""
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from tf2_msgs.msg import TFMessage

from biosig_ros.nodes.ik_outputs import _mark_transforms, unchecked_transform
from biosig_ros.ros.cdr_template import CdrTemplate

NAMES = ["thorax", "clavicle_effector_right", "scapula", "humerus", "ulna", "radius", "hand"]


def _message(names, frame="world"):
    return TFMessage(transforms=[unchecked_transform(frame, name) for name in names])


def _fields(message: TFMessage):
    """Every field of every transform: (names, stamps, numbers) as comparable values."""
    transforms = message.transforms
    names = [(t.header.frame_id, t.child_frame_id) for t in transforms]
    stamps = [(t.header.stamp.sec, t.header.stamp.nanosec) for t in transforms]
    numbers = np.array([[t.transform.translation.x, t.transform.translation.y,
                         t.transform.translation.z, t.transform.rotation.x,
                         t.transform.rotation.y, t.transform.rotation.z,
                         t.transform.rotation.w] for t in transforms])
    return names, stamps, numbers


def assert_same(data: bytes, expected: TFMessage):
    assert len(data) == len(serialize_message(expected))
    names, stamps, numbers = _fields(deserialize_message(data, TFMessage))
    expected_names, expected_stamps, expected_numbers = _fields(expected)
    assert names == expected_names and stamps == expected_stamps
    np.testing.assert_array_equal(numbers, expected_numbers)  # NaN where NaN


def test_filled_bytes_are_rclpys_serialization_of_the_same_values():
    template = CdrTemplate.build(_message(NAMES), _mark_transforms, 7 * len(NAMES), 2 * len(NAMES))
    assert template is not None
    rng = np.random.default_rng(4)
    for _ in range(5):
        poses = rng.normal(size=(len(NAMES), 7))
        poses[2, 1] = np.nan
        stamps = np.tile([rng.integers(0, 2**31), rng.integers(0, 10**9)], len(NAMES))
        expected = _message(NAMES)
        _mark_transforms(expected, poses.ravel().tolist(), stamps.tolist())
        data = template.fill(poses.ravel(), stamps)
        assert_same(data, expected)
        back = deserialize_message(data, TFMessage)
        assert back.transforms[3].child_frame_id == "humerus"
        assert back.transforms[3].transform.rotation.w == poses[3, 6]
        assert back.transforms[6].header.stamp.nanosec == stamps[1]


def test_odd_name_lengths_and_one_transform_keep_their_alignment():
    for names in (["a"], ["ab", "abc", "abcd", "abcde"], ["x" * 13] * 3):
        template = CdrTemplate.build(_message(names, "w"), _mark_transforms, 7 * len(names),
                                     2 * len(names))
        poses = np.arange(7.0 * len(names)) + 0.25
        stamps = np.arange(2 * len(names)) + 5
        expected = _message(names, "w")
        _mark_transforms(expected, poses.tolist(), stamps.tolist())
        assert_same(template.fill(poses, stamps), expected)


def test_no_template_when_a_sentinel_is_not_found_once():
    def mark_nothing(message, doubles, ints, floats):
        pass
    assert CdrTemplate.build(_message(NAMES), mark_nothing, 3, 0) is None


def test_ik_tf_from_the_template_and_without_it_say_the_same():
    """IkOutputs' two /tf paths (template bytes; message fields where no template can be
    built) publish the same transforms for one pose."""
    from biosig_ros.nodes.ik_outputs import IkOutputs
    from biosig_ros.processing.ik_model import load_model
    from biosig_ros.processing.ik_synthetic import WU_NEUTRAL

    class Publisher:
        def __init__(self):
            self.sent = []

        def publish(self, message):
            self.sent.append(message)

    class Node:
        def create_publisher(self, *args, **kwargs):
            return Publisher()

    model = load_model("data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod")
    outputs = IkOutputs(Node(), model, "world", True, "s1_")
    assert outputs._tf_template is not None
    stamp = type("Stamp", (), {"sec": 1_700_000_000, "nanosec": 250_000_000})()
    outputs._publish_tf(stamp, WU_NEUTRAL.copy())
    outputs._tf_template = None
    outputs._publish_tf(stamp, WU_NEUTRAL.copy())
    from_template, from_fields = outputs._tf.sent
    assert isinstance(from_template, bytes) and isinstance(from_fields, TFMessage)
    assert_same(from_template, from_fields)
    assert from_fields.transforms[0].child_frame_id == "s1_" + model.segment_names[0]
    assert from_fields.transforms[0].header.stamp.nanosec == 250_000_000
