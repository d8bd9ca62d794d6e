"""biosiglive_source_node: polls a running biosiglive 2.0.3 server (biosig_ros.devices.
biosiglive_source) and publishes one of its devices as SignalChunks (default `emg/raw`), a
lifecycle node like the device nodes, so a lab can move to ROS 2 one machine at a time."""
from biosig_ros.devices.biosiglive_source import BiosigliveSource
from biosig_ros.ros.custom_device_node import run_custom_device


def main():
    run_custom_device(BiosigliveSource, "biosiglive_source")


if __name__ == "__main__":
    main()
