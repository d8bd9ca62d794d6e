"""The core (io, devices, processing, bridge and the top-level modules) must import without ROS,
and setup.py must package exactly that core."""
import ast
import subprocess
import sys
import zipfile

import pytest

from core_wheel import build_core_wheel
from ros_harness import REPO

PACKAGE = REPO / "biosig_ros"
ROS_LAYERS = {"ros", "nodes"}
CORE_FILES = sorted(
    p for p in PACKAGE.rglob("*.py")
    if p.relative_to(PACKAGE).parts[0] not in ROS_LAYERS
    and p.name not in {"graph.py"}  # starts processes; imports no ROS either, checked below
) + [PACKAGE / "graph.py"]
ROS_MODULES = ("rclpy", "rcl_interfaces", "std_msgs", "sensor_msgs", "diagnostic_msgs",
               "geometry_msgs", "builtin_interfaces", "launch", "launch_ros", "std_srvs")


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_core_module_imports_nothing_from_ros(path):
    for module in imported_modules(path):
        root = module.split(".")[0]
        assert root not in ROS_MODULES, f"{path.name} imports {module}"
        assert not module.startswith(("biosig_ros.ros", "biosig_ros.nodes", "biosig_ros.msg",
                                      "biosig_ros.srv")), f"{path.name} imports {module}"


@pytest.mark.integration
def test_core_imports_with_ros_unavailable():
    modules = [".".join(p.relative_to(REPO).with_suffix("").parts) for p in CORE_FILES
               if p.name != "__init__.py"]
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {ROS_MODULES!r}: raise ImportError('ROS: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n")
    result = subprocess.run([sys.executable, "-c", blocker], cwd=REPO, capture_output=True,
                            encoding="utf-8", errors="replace", timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_setup_py_packages_the_core_without_the_ros_layer(tmp_path):
    wheel = build_core_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "biosig_ros/io/bio_file.py" in names
    assert "biosig_ros/signals.py" in names
    assert not [n for n in names if n.startswith(("biosig_ros/nodes/", "biosig_ros/ros/"))]
