"""Quality-of-service profiles shared by all nodes."""
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data


def sensor_qos(depth: int = 50) -> QoSProfile:
    """Sensor-data QoS (best effort, volatile) with a deeper queue than rclpy's default of 5,
    so that a consumer that is briefly busy does not lose chunks on a healthy link."""
    profile = QoSProfile(depth=depth)
    profile.history = HistoryPolicy.KEEP_LAST
    profile.reliability = qos_profile_sensor_data.reliability
    profile.durability = qos_profile_sensor_data.durability
    return profile
