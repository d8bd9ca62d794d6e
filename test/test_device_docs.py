"""The device nodes' parameter tables and shipped files name exactly the settings fields (the
descriptions live in the dataclasses; these tables must not drift from them)."""
import dataclasses
import re

import pytest
import yaml

from biosig_ros.devices.trigno_client import TrignoSettings
from biosig_ros.devices.udp_amplifier import UdpAmplifierSettings
from biosig_ros.devices.vicon_client import ViconSettings
from biosig_ros.paths import config_dir
from biosig_ros.ros.device_node import DeviceNodeSettings
from ros_harness import REPO

def documented(page: str) -> set[str]:
    """Names in the first column of the page's `| parameter | ...` table (the generated one)."""
    names, in_table = set(), False
    for line in (REPO / "docs" / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("| parameter |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table:
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def fields(settings_type) -> set[str]:
    return {f.name for f in dataclasses.fields(settings_type)} | {
        f.name for f in dataclasses.fields(DeviceNodeSettings)}


@pytest.mark.parametrize("page, settings_type, configs", [
    ("nodes/trigno_emg_node.md", TrignoSettings, ["trigno_emg.yaml"]),
    ("nodes/vicon_markers_node.md", ViconSettings, ["vicon_markers.yaml", "vicon_sim.yaml"]),
    ("nodes/udp_amplifier_node.md", UdpAmplifierSettings, ["udp_amplifier.yaml"]),
])
def test_tables_and_files_name_the_settings_fields(page, settings_type, configs):
    expected = fields(settings_type)
    assert documented(page) == expected
    for name in configs:
        document = yaml.safe_load((config_dir() / name).read_text(encoding="utf-8"))
        keys = set(document["/**"]["ros__parameters"])
        assert keys <= expected, keys - expected
    assert all(f.metadata.get("doc") for f in dataclasses.fields(settings_type))
