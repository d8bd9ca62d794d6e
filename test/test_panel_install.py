"""The panel is registered where rqt and the shell look for it: plugin.xml exported from
package.xml and installed in share/, naming a class that exists; biosig_ros_panel on PATH
once tools/env.sh is sourced (colcon's setup adds the install space's bin/)."""
import ast
import os
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from ros_harness import REPO


def test_package_xml_exports_the_plugin_description():
    exports = ElementTree.parse(REPO / "package.xml").getroot().find("export")
    plugin = exports.find("rqt_gui")
    assert plugin is not None and plugin.get("plugin") == "${prefix}/plugin.xml"


def test_plugin_xml_names_an_rqt_python_plugin_class_that_exists():
    library = ElementTree.parse(REPO / "plugin.xml").getroot()
    classes = list(library.iter("class"))
    assert len(classes) == 1
    plugin = classes[0]
    assert plugin.get("base_class_type") == "rqt_gui_py::Plugin"
    assert plugin.find("qtgui/label").text == "biosig_ros panel"
    module, name = plugin.get("type").rsplit(".", 1)
    source = REPO / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assert found and [b.id for b in found[0].bases] == ["Plugin"]
    methods = {n.name for n in found[0].body if isinstance(n, ast.FunctionDef)}
    assert {"__init__", "shutdown_plugin", "save_settings", "restore_settings"} <= methods


@pytest.mark.integration
def test_installed_for_rqt_and_on_path():
    share = REPO / "install" / "biosig_ros" / "share" / "biosig_ros"
    assert (share / "plugin.xml").is_file() and (share / "package.xml").is_file()
    found = shutil.which("biosig_ros_panel")
    assert found and Path(found).resolve() == (REPO / "scripts" / "biosig_ros_panel").resolve()
    result = subprocess.run([found, "--size", "big"], capture_output=True, encoding="utf-8",
                            errors="replace", timeout=120)
    assert result.returncode == 2 and "--size: expected WxH" in result.stderr
    headless = {k: v for k, v in os.environ.items()
                if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([found], capture_output=True, encoding="utf-8", errors="replace",
                            timeout=120, env=headless)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "biosig_ros_panel: no display (DISPLAY is not set): run it on a desktop, or with "
        "QT_QPA_PLATFORM=offscreen for --screenshot"]
