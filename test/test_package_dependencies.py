"""package.xml declares what the code imports, so that rosdep can set up a ROS 2 workspace.

Every third-party import of biosig_ros/ and scripts/ is a run dependency of package.xml (under
its rosdep key), or one of the pip-only packages below, which docs/setup.md lists and
requirements.txt pins. The tests' imports are declared too (any kind of dependency). And
every declared dependency is imported, or listed below with the reason it is declared.
"""
import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Python module -> rosdep key, where the two differ (ROS packages: the same name).
ROSDEP_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "numba": "python3-numba",
               "yaml": "python3-yaml", "pytest": "python3-pytest",
               "hypothesis": "python3-hypothesis", "xdist": "python3-pytest-xdist",
               "PyQt5": "python3-pyqt5", "pyqtgraph": "python3-pyqtgraph"}
# Python module -> PyPI distribution, for the imports rosdep has no key for.
PIP_ONLY = {"biorbd": "biorbd", "ezc3d": "ezc3d", "mcap": "mcap", "mcap_ros2": "mcap-ros2-support"}
PIP_ONLY_FOR_TESTS = {"biosiglive": "biosiglive"}
# Declared, though no module imports them by name.
NOT_IMPORTED = {
    "ament_cmake": "build type", "ament_cmake_python": "installs the Python package",
    "rosidl_default_generators": "builds msg/ and srv/",
    "rosidl_default_runtime": "runs the generated messages",
    "lifecycle_msgs": "the services of rclpy.lifecycle's device nodes",
    "ament_cmake_pytest": "colcon test (CMakeLists.txt)",
}
RUN_KINDS = ("depend", "exec_depend", "build_export_depend")
ALL_KINDS = (*RUN_KINDS, "build_depend", "buildtool_depend", "test_depend")


def declared(kinds) -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {element.text.strip() for kind in kinds for element in root.iter(kind)}


def third_party_imports(*paths: Path) -> dict[str, set[str]]:
    """Top-level module -> files importing it, outside the standard library and the repo."""
    local = {"biosig_ros", *(p.stem for p in (REPO / "test").glob("*.py"))}
    found: dict[str, set[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def package_files() -> list[Path]:
    scripts = [p for p in (REPO / "scripts").iterdir()
               if p.read_text(encoding="utf-8").startswith("#!/usr/bin/env python")]
    return [*(REPO / "biosig_ros").rglob("*.py"), *scripts]


def key(module: str) -> str:
    return ROSDEP_KEYS.get(module, module)


def test_the_scan_sees_the_packages_imports():
    imports = third_party_imports(*package_files())
    assert {"rclpy", "numpy", "biorbd", "tf2_msgs", "ament_index_python"} <= set(imports)
    assert "os" not in imports and "biosig_ros" not in imports


def test_every_import_of_the_package_is_a_run_dependency_or_pip_only():
    run = declared(RUN_KINDS)
    missing = {module: sorted(files)[:3]
               for module, files in third_party_imports(*package_files()).items()
               if module not in PIP_ONLY and key(module) not in run}
    assert not missing, f"imported but not in package.xml (<exec_depend>): {missing}"


def test_every_import_of_the_tests_is_declared_or_pip_only():
    every = declared(ALL_KINDS)
    pip_only = {**PIP_ONLY, **PIP_ONLY_FOR_TESTS}
    missing = {module: sorted(files)[:3]
               for module, files in third_party_imports(*(REPO / "test").glob("*.py")).items()
               if module not in pip_only and key(module) not in every}
    assert not missing, f"imported by the tests but not in package.xml: {missing}"


def test_every_declared_dependency_is_used():
    imported = {key(module) for module in third_party_imports(
        *package_files(), *(REPO / "test").glob("*.py"))}
    unused = declared(ALL_KINDS) - imported - set(NOT_IMPORTED)
    assert not unused, f"declared in package.xml but imported nowhere: {sorted(unused)}"


def test_pip_only_dependencies_are_pinned_and_documented():
    pinned = set(re.findall(r"^([A-Za-z0-9_.-]+)==", (REPO / "requirements.txt").read_text(
        encoding="utf-8"), re.MULTILINE))
    setup = (REPO / "docs" / "setup.md").read_text(encoding="utf-8")
    for distribution in {**PIP_ONLY, **PIP_ONLY_FOR_TESTS}.values():
        assert distribution in pinned, f"{distribution}: pip-only, not pinned in requirements.txt"
        assert f"`{distribution}`" in setup, f"{distribution}: pip-only, not in docs/setup.md"
