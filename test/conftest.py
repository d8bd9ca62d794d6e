"""Test session set-up: an isolated ROS 2 domain on loopback for every run."""
import os
import random
import sys
from pathlib import Path

# A unique domain per test run, and discovery limited to this machine, so that parallel runs
# (or a lab's live graph on the same network) never see each other's topics.
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
if os.environ.get("ROS_DISTRO") == "humble":
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
else:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated since Jazzy; RANGE replaces it
os.environ.setdefault("PYTHONUNBUFFERED", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
