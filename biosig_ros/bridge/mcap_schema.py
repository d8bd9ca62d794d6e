"""ROS 2 message definitions for MCAP schemas, from the `.msg` files, without ROS.

An MCAP schema of encoding `ros2msg` (what rosbag2, Foxglove and PlotJuggler read) is the
type's `.msg` text followed by the text of every type it uses, each after a line of 80 `=`
and `MSG: pkg/Type`. The `.msg` files are looked up in the share directories of the
environment (`<prefix>/share/<pkg>/msg/<Type>.msg` for every AMENT_PREFIX_PATH entry and this
Python's prefix, where the ROS wheels install them, and where the pip-installed core puts
biosig_ros's own), for biosig_ros in the package, and last in `bridge/interfaces/`: the few
standard types the ROS-free core writes (Header, Time, JointState), for an environment
without ROS.
"""
from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from biosig_ros.errors import ConfigError
from biosig_ros.paths import share_dir

PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
              "int32", "uint32", "int64", "uint64", "string", "wstring"}
_SEPARATOR = "=" * 80
_TYPE = re.compile(r"^([A-Za-z_][\w/]*)")
BUNDLED = Path(__file__).resolve().parent / "interfaces"


def split_type(name: str) -> tuple[str, str]:
    """'sensor_msgs/msg/JointState' or 'sensor_msgs/JointState' -> ('sensor_msgs', 'JointState')."""
    parts = name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ConfigError(f"'{name}' is not a message type name (package/msg/Type)")


def _share_roots() -> list[Path]:
    prefixes = os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
    roots = [Path(p) / "share" for p in prefixes if p]
    roots.append(Path(sys.prefix) / "share")
    return roots


def find_msg_file(package: str, name: str) -> Path:
    candidates = [root / package / "msg" / f"{name}.msg" for root in _share_roots()]
    if package == "biosig_ros":
        candidates.append(share_dir() / "msg" / f"{name}.msg")
    candidates.append(BUNDLED / package / f"{name}.msg")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no definition of {package}/msg/{name} (looked for {name}.msg in "
                      f"{', '.join(str(c.parent) for c in candidates[:4])}, ...)")


def _dependencies(package: str, text: str) -> list[str]:
    """The 'pkg/Type' of every non-primitive field of a .msg text, in order."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not _TYPE.match(line):
            continue
        words = line.split()
        if len(words) < 2 or "=" in words[1]:
            continue  # a constant (primitive only) or not a field
        base = re.sub(r"(<=\d+)?(\[.*\])?$", "", words[0])
        if base in PRIMITIVES:
            continue
        # A bare Header is std_msgs' (ROS 1 habit some .msg files keep).
        if "/" in base:
            full = base
        else:
            full = "std_msgs/Header" if base == "Header" else f"{package}/{base}"
        found.append("/".join(split_type(full)))
    return found


@lru_cache(maxsize=None)
def message_definition(type_name: str) -> str:
    """The ros2msg schema text of type_name ('pkg/msg/Type'), dependencies appended once each."""
    package, name = split_type(type_name)
    text = find_msg_file(package, name).read_text(encoding="utf-8")
    pieces, seen = [text.rstrip("\n")], set()
    queue = _dependencies(package, text)
    while queue:
        dependency = queue.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        dep_package, dep_name = split_type(dependency)
        dep_text = find_msg_file(dep_package, dep_name).read_text(encoding="utf-8")
        pieces.append(f"{_SEPARATOR}\nMSG: {dependency}\n{dep_text.rstrip(chr(10))}")
        queue.extend(_dependencies(dep_package, dep_text))
    return "\n".join(pieces) + "\n"
