"""Build the ROS-free core's wheel from setup.py, and a local wheelhouse of its dependencies
(for the packaging tests)."""
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
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


def wheelhouse_for(wheel: Path) -> Path:
    """A local directory holding every wheel that `pip install wheel[all]` needs, at the
    versions pinned in requirements.txt: filled from the package index once per set of
    requirements (under a lock: parallel runs share it), then installs need no network.

    BIOSIG_ROS_WHEELHOUSE moves it (default ~/.cache/biosig_ros/wheelhouse)."""
    requirements = _pinned(_requires(wheel))
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:16]
    base = Path(os.environ.get("BIOSIG_ROS_WHEELHOUSE",
                               Path.home() / ".cache" / "biosig_ros" / "wheelhouse"))
    house = base / key
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (house / ".complete").exists():
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                 "-d", str(house), *requirements], capture_output=True, encoding="utf-8",
                errors="replace", timeout=1200)
            assert result.returncode == 0, result.stderr[-3000:]
            (house / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return house


def _requires(wheel: Path) -> list[str]:
    """The distributions the wheel pulls in with every extra (its METADATA)."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode("utf-8").splitlines()
    return [re.split(r"[\s;<>=!~\[]", line.split(":", 1)[1].strip())[0]
            for line in lines if line.startswith("Requires-Dist:")]


def _pinned(names: list[str]) -> list[str]:
    """name==version as requirements.txt pins it (the name alone where it is not pinned)."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        found = re.match(r"([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if found:
            pins[_normal(found.group(1))] = found.group(0)
    return sorted({pins.get(_normal(name), name) for name in names})


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
