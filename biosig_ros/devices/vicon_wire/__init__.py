"""A Vicon DataStream server speaking Vicon's wire protocol, for Vicon's own client library."""
from biosig_ros.devices.vicon_wire.scene import WireDevice, WireScene, WireSubject  # noqa: F401
from biosig_ros.devices.vicon_wire.server import DEFAULT_PORT, ViconWireServer  # noqa: F401
