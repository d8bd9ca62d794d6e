"""The thin rclpy layer: QoS, message conversion, parameters, diagnostics, node start-up."""
