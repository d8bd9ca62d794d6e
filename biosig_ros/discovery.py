"""DDS discovery limited to this machine, for graphs and tests (see docs/graphs.md)."""
from __future__ import annotations

from pathlib import Path

from biosig_ros.paths import config_dir

PROFILE = "fastdds_localhost.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def localhost_profile() -> Path:
    """The shipped Fast DDS profile (installed share, else the source checkout)."""
    installed = config_dir() / PROFILE
    source = Path(__file__).resolve().parent.parent / "config" / PROFILE
    return installed if installed.exists() else source


def restrict_discovery_to_localhost(environment, force: bool = False) -> None:
    """Discovery limited to this machine, unless the environment already chose one (force:
    choose anyway). With Fast DDS (the default RMW) and no profile file of the user's, the
    package's profile does it (loopback UDP, no shared memory: see docs/graphs.md) and the
    range is SYSTEM_DEFAULT so that rmw_fastrtps adds nothing to it; otherwise Jazzy and later
    get ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, Humble ROS_LOCALHOST_ONLY=1."""
    chosen = "ROS_AUTOMATIC_DISCOVERY_RANGE" in environment or "ROS_LOCALHOST_ONLY" in environment
    if chosen and not force:
        return
    environment.pop("ROS_LOCALHOST_ONLY", None)  # deprecated since Jazzy
    if environment.get("ROS_DISTRO") == "humble":
        environment["ROS_LOCALHOST_ONLY"] = "1"
    elif (environment.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") == "rmw_fastrtps_cpp"
          and not any(environment.get(name) for name in PROFILE_VARIABLES)):
        environment["FASTDDS_DEFAULT_PROFILES_FILE"] = str(localhost_profile())
        environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"
    else:
        environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
