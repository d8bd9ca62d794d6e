"""ROS-free core of the robot-facing nodes: EMG-driven assistance (law, torque limiter, safety
state machine, gravity support from a biorbd model) and a one-joint exoskeleton simulation."""
