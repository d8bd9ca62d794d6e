"""DDS discovery limited to this machine, for graphs and tests, and Fast DDS without shared
memory (see docs/graphs.md, "Discovery ... and why without shared memory").

With rmw_fastrtps, processes on one machine exchange data through Fast DDS' shared-memory
ports unless told otherwise, and a node killed with SIGKILL can leave the others deaf to each
other for minutes (137 s measured), silently. The runner therefore always picks a transport
without shared memory for Fast DDS (choose_transport), and anything that starts a graph can
name the risk at start (shared_memory_risk).
"""
from __future__ import annotations

from pathlib import Path

from biosig_ros.paths import config_dir

PROFILE = "fastdds_localhost.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
RANGE = "ROS_AUTOMATIC_DISCOVERY_RANGE"
BUILTIN_TRANSPORTS = "FASTDDS_BUILTIN_TRANSPORTS"
_WITHOUT_SHARED_MEMORY = ("UDPv4", "UDPv6")  # FASTDDS_BUILTIN_TRANSPORTS values without SHM


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


def _fast_dds(environment) -> bool:
    return environment.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") == "rmw_fastrtps_cpp"


def _users_profile(environment) -> bool:
    return any(environment.get(name) for name in PROFILE_VARIABLES)


def shared_memory_risk(environment) -> str:
    """'' when the environment keeps Fast DDS off shared memory (or uses another RMW, or a
    profile file of the user's, which decides); else one line naming the risk and the fix."""
    if not _fast_dds(environment) or _users_profile(environment):
        return ""
    localhost = (environment.get(RANGE) == "LOCALHOST"
                 or environment.get("ROS_LOCALHOST_ONLY") == "1")
    if not localhost and environment.get(BUILTIN_TRANSPORTS) in _WITHOUT_SHARED_MEMORY:
        return ""
    fix = (f"unset {RANGE} / ROS_LOCALHOST_ONLY and export FASTDDS_DEFAULT_PROFILES_FILE="
           f"{localhost_profile()} {RANGE}=SYSTEM_DEFAULT (the same localhost-only reach over "
           "UDP)" if localhost else f"export {BUILTIN_TRANSPORTS}=UDPv4")
    return ("Fast DDS shared memory is on: a node killed with SIGKILL can stall the other nodes' "
            f"data for minutes, silently (docs/graphs.md). Fix: {fix}")


def choose_transport(environment, local: bool, keep_shared_memory: bool = False) -> list[str]:
    """Set up `environment` for a graph's processes; returns lines to print.

    local: discovery stays on this machine (the demo and simulated graphs without --network).
    With Fast DDS and no profile of the user's, shared memory is never used: a local graph, or
    one whose environment asked for LOCALHOST (where rmw_fastrtps forces shared memory on),
    gets the package's loopback-UDP profile; a network graph gets UDPv4 as Fast DDS' builtin
    transport (unless the user chose the builtin transports). keep_shared_memory leaves
    the transports to the environment and only warns."""
    notes = []
    if keep_shared_memory:
        if local:
            restrict_discovery_to_localhost(environment)
    elif _fast_dds(environment) and not _users_profile(environment):
        asked_localhost = (environment.get(RANGE) == "LOCALHOST"
                           or environment.get("ROS_LOCALHOST_ONLY") == "1")
        if (local and environment.get(RANGE) in (None, "LOCALHOST")) or asked_localhost:
            if asked_localhost:
                notes.append(f"{RANGE}=LOCALHOST replaced by the package's loopback-UDP profile "
                             "(same reach, no shared memory: docs/graphs.md)")
            restrict_discovery_to_localhost(environment, force=True)
        elif environment.get(BUILTIN_TRANSPORTS) is None:
            environment[BUILTIN_TRANSPORTS] = "UDPv4"
    elif local:
        restrict_discovery_to_localhost(environment)
    risk = shared_memory_risk(environment)
    if risk:
        notes.append(risk)
    return notes
