"""What the bridge serves and records: topics per biosiglive key, buffer sizes, units."""
from __future__ import annotations

from dataclasses import dataclass, field

from biosig_ros.errors import ConfigError

# biosiglive key -> the parameter listing its topics (one topic per device / marker set).
TOPIC_PARAMETERS = {
    "raw_device_data": "raw_device_topics",
    "proc_device_data": "proc_device_topics",
    "kinematics_data": "kinematics_topics",
    "marker_set_data": "marker_set_topics",
}


@dataclass
class BridgeSettings:
    """Sources of the legacy keys and how they are buffered and scaled."""

    raw_device_topics: list[str] = field(default_factory=lambda: ["emg/raw"], metadata={
        "doc": "SignalChunk topics served as raw_device_data (one per device)"})
    proc_device_topics: list[str] = field(default_factory=lambda: ["emg/envelope"], metadata={
        "doc": "SignalChunk topics served as proc_device_data"})
    marker_set_topics: list[str] = field(default_factory=lambda: ["markers"], metadata={
        "doc": "MarkerSet topics served as marker_set_data"})
    kinematics_topics: list[str] = field(default_factory=lambda: ["ik/joint_states"], metadata={
        "doc": "sensor_msgs/JointState topics served as kinematics_data (positions)"})
    kinematics_index_topics: list[str] = field(
        default_factory=lambda: ["ik/marker_residuals"], metadata={
            "doc": "per kinematics topic, the MarkerResiduals topic whose frame_number (paired by "
                   "header stamp) indexes the recorded kinematics; '' or an empty list = a "
                   "running counter"})
    device_buffer_size: int = field(default=0, metadata={
        "doc": "proc_device_data samples kept per device (biosiglive's device_buffer_size); "
               "0 = one second at the topic's sample_rate (biosiglive's default)",
        "range": (0, 10_000_000)})
    marker_set_buffer_size: int = field(default=100, metadata={
        "doc": "kinematics_data frames kept per marker set (biosiglive's marker_set_buffer_size, "
               "one second at Vicon's 100 Hz)", "range": (1, 10_000_000)})
    raw_buffer_size: int = field(default=0, metadata={
        "doc": "raw_device_data samples kept; 0 = the newest chunk only, like biosiglive",
        "range": (0, 10_000_000)})
    marker_buffer_size: int = field(default=0, metadata={
        "doc": "marker_set_data frames kept; 0 = the newest frame only, like biosiglive",
        "range": (0, 10_000_000)})
    marker_scale: float = field(default=1000.0, metadata={
        "doc": "factor from topic metres to served/recorded marker units (1000: millimetres, "
               "what biosiglive clients get from Vicon)"})
    occluded_as_zero: bool = field(default=True, metadata={
        "doc": "serve/record occluded markers as 0,0,0 like Vicon (false: NaN)"})
    serve: bool = field(default=True, metadata={"doc": "run the biosiglive TCP server"})
    record_on_start: bool = field(default=False, metadata={
        "doc": "start recording a .bio file when the node starts"})

    def __post_init__(self):
        for key, name in TOPIC_PARAMETERS.items():
            for topic in getattr(self, name):
                if not topic or not topic.strip():
                    raise ConfigError(f"parameter '{name}' contains an empty topic name")
        for name in ("device_buffer_size", "raw_buffer_size", "marker_buffer_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"parameter '{name}' must be >= 0, got {getattr(self, name)}")
        if self.marker_set_buffer_size < 1:
            raise ConfigError("parameter 'marker_set_buffer_size' must be >= 1, "
                              f"got {self.marker_set_buffer_size}")
        indexes = self.kinematics_index_topics
        if indexes and len(indexes) != len(self.kinematics_topics):
            raise ConfigError(f"parameter 'kinematics_index_topics' must list one topic (or '') "
                              f"per kinematics topic ({len(self.kinematics_topics)}), got "
                              f"{len(indexes)}")
        if not self.marker_scale > 0:
            raise ConfigError(f"parameter 'marker_scale' must be > 0, got {self.marker_scale}")

    def topics(self, key: str) -> list[str]:
        return list(getattr(self, TOPIC_PARAMETERS[key]))

    def index_topic(self, index: int) -> str:
        """The frame-number topic of kinematics source index ('' = counter)."""
        return self.kinematics_index_topics[index] if self.kinematics_index_topics else ""
