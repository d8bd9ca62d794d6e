"""Quality-of-service profiles shared by all nodes.

Outputs are published RELIABLE: a reliable publisher serves both a subscriber with ROS 2's
default QoS (reliable, keep last 10; robot_state_publisher, controllers, most user code) and a
sensor-data subscriber (best effort). Inputs are subscribed BEST_EFFORT, which connects to
publishers of either kind. With KEEP_LAST history a reliable publisher never blocks: a reader
that falls more than `depth` messages behind loses the oldest ones.
"""
import math

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

DEPTH = 50  # a consumer that is briefly busy does not lose chunks on a healthy link
# A recorder's queue: 10 s at 100 messages per second. Its DDS threads keep taking messages
# while its executor is stalled (a file flush, a loaded machine); a queue of DEPTH lost 0.3 s
# of EMG to one 0.8 s stall in a suite run.
RECORDING_DEPTH = 1000


def output_qos(depth: int = DEPTH) -> QoSProfile:
    """Publishers: reliable, volatile, keep last `depth`."""
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def input_qos(depth: int = DEPTH) -> QoSProfile:
    """Subscriptions: best effort (accepts reliable and best-effort publishers), volatile."""
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def control_input_qos(max_age: float, rate: float = 100.0) -> QoSProfile:
    """Subscriptions a robot command depends on (assist_node): RELIABLE, so that one message
    lost on the way is not a false gap fault; a queue of max_age x rate messages (at least 5):
    what a stalled subscriber would drop beyond it is older than max_age, refused anyway.
    Connects to reliable publishers only (every node of this package publishes reliable)."""
    return QoSProfile(depth=max(5, math.ceil(max_age * rate)), history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def sensor_qos(depth: int = DEPTH) -> QoSProfile:
    """Sensor-data QoS (best effort): the subscription profile, kept for older callers."""
    return input_qos(depth)


def recording_qos(publishers, depth: int = RECORDING_DEPTH) -> QoSProfile:
    """A recorder's subscription: RELIABLE when every publisher seen offers it (nothing they
    deliver reliably is lost to the recorder), else BEST_EFFORT (connects to any), as rosbag2
    adapts to the publishers. publishers: rclpy TopicEndpointInfo list."""
    reliable = bool(publishers) and all(
        info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers)
    return output_qos(depth) if reliable else input_qos(depth)
