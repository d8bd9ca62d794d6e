"""udp_amplifier_node: the worked custom-device example (biosig_ros.devices.udp_amplifier) as a
lifecycle node publishing `amplifier/raw` (docs/custom_device.md)."""
from biosig_ros.devices.udp_amplifier import UdpAmplifier
from biosig_ros.ros.custom_device_node import run_custom_device


def main():
    run_custom_device(UdpAmplifier, "udp_amplifier")


if __name__ == "__main__":
    main()
