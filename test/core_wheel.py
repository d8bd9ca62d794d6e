"""Build the ROS-free core's wheel from setup.py (for the packaging tests)."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def core_source(directory: Path) -> Path:
    """What setup.py packages (biosig_ros/, msg/, setup.py), copied to directory/src.

    A copy: setuptools writes build/ and *.egg-info next to setup.py, and build/ is colcon's."""
    source = directory / "src"
    shutil.copytree(REPO / "biosig_ros", source / "biosig_ros",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "msg", source / "msg")
    shutil.copy(REPO / "setup.py", source)
    return source


def build_core_wheel(directory: Path) -> Path:
    """The biosig_ros_core wheel, built into directory (from core_source's copy)."""
    source = core_source(directory)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(directory), str(source)], capture_output=True, encoding="utf-8",
        errors="replace", timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = directory.glob("biosig_ros_core-*.whl")
    return wheel
