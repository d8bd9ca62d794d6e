"""Command-line tools built on the ROS-free core (bio_check)."""
