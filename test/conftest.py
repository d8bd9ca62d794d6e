"""Test session set-up: an isolated ROS 2 domain on loopback for every run."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PYTHONUNBUFFERED", "1")

from ros_harness import isolate_ros_graph  # noqa: E402

# Parallel runs (or a lab's live graph) never see each other's topics.
isolate_ros_graph()
