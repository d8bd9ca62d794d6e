"""The shared-memory stall (docs/graphs.md): with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exported, as many ROS users do, rmw_fastrtps puts every process on Fast DDS shared memory and
a node killed with SIGKILL could stall the graph for minutes. The runner replaces that range by
the package's loopback-UDP profile: no node of the graph maps a Fast DDS shared-memory
segment, and the runner says what it did."""
import os
from pathlib import Path

import pytest

from graph_harness import GraphProcess

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)


def fast_dds_segments(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8", errors="replace")
    return {line.split()[-1] for line in maps.splitlines() if "/dev/shm/fastdds" in line}


def started(graph) -> dict[str, int]:
    """Node processes once both have printed (their DDS participants exist by then; no data
    needs to flow: the UDP port of the amplifier's simulator may be taken on a shared machine)."""
    for name in ("udp_amplifier", "monitor"):
        assert graph.wait_for(rf"\[{name}\] ", timeout=180), graph.output()[-3000:]
    pids = graph.node_pids()
    assert {"udp_amplifier", "monitor"} <= set(pids), pids
    return {name: pids[name] for name in ("udp_amplifier", "monitor")}


def test_an_exported_localhost_range_does_not_put_the_graph_on_shared_memory(monkeypatch):
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                 "FASTDDS_BUILTIN_TRANSPORTS", "RMW_IMPLEMENTATION", "ROS_LOCALHOST_ONLY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    with GraphProcess("custom_device") as graph:
        pids = started(graph)
        mapped = {name: fast_dds_segments(pid) for name, pid in pids.items()}
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST replaced" in graph.output()
    assert mapped == {name: set() for name in pids}, mapped


def test_the_same_environment_without_the_runner_is_on_shared_memory(monkeypatch):
    """The check above can fail: a node started with LOCALHOST directly maps the segments."""
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                 "FASTDDS_BUILTIN_TRANSPORTS", "RMW_IMPLEMENTATION", "ROS_LOCALHOST_ONLY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    with GraphProcess("custom_device", "--dds-shared-memory") as graph:
        pids = started(graph)
        mapped = {name: fast_dds_segments(pid) for name, pid in pids.items()}
    assert "Fast DDS shared memory is on" in graph.output()
    assert all(mapped[name] for name in ("udp_amplifier", "monitor")), mapped
