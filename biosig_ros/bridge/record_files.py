"""Where recordings go and how big they get: one place for the `.bio` and MCAP recorders.

- The record directory: `record_directory`, relative to $ROS_HOME (default ~/.ros), so the
  default `biosig_ros/recordings` does not depend on the working directory.
- A requested name is confined to that directory: absolute paths, `..` and names that
  resolve outside it (through a symbolic link) are refused with the reason.
- A recording never appends: a requested name whose file (or any of its parts) exists is
  refused; a default (timestamped) name moves on to `_1`, `_2`, ... Every part is created with
  O_EXCL, so two recorders can never share a file either.
- Rotation: with `max_file_bytes` or `max_file_seconds` set, the files are
  `<name>_part001<suffix>`, `<name>_part002<suffix>`, ..., each a complete file.
- Disk guard: `min_free_bytes` of free space in the record directory; below it recording
  stops (the caller reports one ERROR) while everything else goes on.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field

MIB = 2 ** 20
NAME_MAX_BYTES = 255    # one path component on Linux, macOS and Windows file systems
PATH_MAX_BYTES = 4000   # the whole path (Linux PATH_MAX is 4096, room for the part suffix)


class PathRefused(ConfigError):
    """A recording path that is not allowed; the message says why."""


@dataclass
class RecordFileSettings:
    """Record directory, rotation and disk guard shared by the recorders."""

    record_directory: str = doc_field(
        "biosig_ros/recordings", "directory of recordings; a relative one is under $ROS_HOME "
        "(default ~/.ros), never the working directory")
    record_path: str = doc_field(
        "", "name to record to, inside record_directory; '' = a timestamped name "
        "(<prefix>_YYYYmmdd_HHMMSS)")
    max_file_bytes: int = doc_field(
        1024 * MIB, "start a new part once a file reaches this many bytes (0: no size limit)",
        range=(0, None), runtime=True)
    max_file_seconds: float = doc_field(
        0.0, "start a new part after this many seconds (0: no time limit)", range=(0.0, None),
        runtime=True)
    min_free_bytes: int = doc_field(
        512 * MIB, "stop recording (one ERROR) when the record directory's disk has less "
        "free space than this", range=(0, None), runtime=True)

    def __post_init__(self):
        path = PurePath(self.record_path)
        if path.is_absolute() or ".." in path.parts or self.record_path.startswith("~"):
            raise ConfigError(f"parameter 'record_path' ({self.record_path}) must be a name "
                              "inside record_directory: no absolute path, no '..'")
        if self.record_path:
            try:
                check_name(self.record_path)
            except PathRefused as error:
                raise ConfigError(f"parameter 'record_path': {error}") from None
        for name in ("max_file_bytes", "max_file_seconds", "min_free_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"parameter '{name}' must be >= 0, got {getattr(self, name)}")
        if 0 < self.max_file_bytes < MIB:
            raise ConfigError(f"parameter 'max_file_bytes' must be 0 or at least {MIB} "
                              f"(1 MiB), got {self.max_file_bytes}")
        if 0 < self.max_file_seconds < 1.0:
            raise ConfigError("parameter 'max_file_seconds' must be 0 or at least 1 s, got "
                              f"{self.max_file_seconds}")

    @property
    def rotating(self) -> bool:
        return self.max_file_bytes > 0 or self.max_file_seconds > 0


def ros_home() -> Path:
    return Path(os.environ.get("ROS_HOME") or "~/.ros").expanduser()


def record_root(record_directory: str) -> Path:
    """The record directory: absolute as given, relative under $ROS_HOME."""
    path = Path(record_directory).expanduser()
    return path if path.is_absolute() else ros_home() / path


def confine(name: str, directory: Path, suffix: str) -> Path:
    """The path of the requested recording name inside directory (suffix added when the name
    has none); PathRefused for an absolute path, `..`, or a name leaving the directory."""
    if not name.strip():
        raise PathRefused("empty recording name")
    check_name(name)
    relative = Path(name)
    if relative.is_absolute() or name.startswith("~"):
        raise PathRefused(f"'{name}' is an absolute path: recordings are written inside the "
                          f"record directory {directory}; give a name relative to it")
    if ".." in relative.parts:
        raise PathRefused(f"'{name}' contains '..': recordings stay inside the record "
                          f"directory {directory}")
    if relative.name in ("", ".") or name.rstrip().endswith(("/", "/.")):
        raise PathRefused(f"'{_shown(name)}' names a directory, not a file")
    if relative.suffix == "":
        relative = relative.with_suffix(suffix)
    elif relative.suffix != suffix:
        raise PathRefused(f"'{name}': this recorder writes {suffix} files")
    path = directory / relative
    if len(os.fsencode(path)) > PATH_MAX_BYTES:
        raise PathRefused(f"'{_shown(name)}': the path in {directory} would be longer than "
                          f"{PATH_MAX_BYTES} bytes")
    try:
        inside = (path.parent.resolve() / path.name).is_relative_to(directory.resolve())
    except (OSError, RuntimeError) as error:  # a symbolic-link loop, an unreadable directory
        raise PathRefused(f"'{_shown(name)}': {getattr(error, 'strerror', None) or error}") \
            from None
    if not inside:
        raise PathRefused(f"'{name}' resolves outside the record directory {directory}")
    return path


def _shown(name: str) -> str:
    """A name as a log line can show it: control characters escaped, at most 60 characters."""
    shown = name.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 60 else f"{shown[:40]}...({len(name)} characters)"


def check_name(name: str) -> None:
    """PathRefused, naming the reason, for a name no file system takes: control characters
    (NUL included), a component longer than NAME_MAX_BYTES (with room for a part suffix)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathRefused(f"'{_shown(name)}' contains control characters (NUL, newline...): "
                          "give a plain file name")
    try:
        encoded = [os.fsencode(part) for part in PurePath(name).parts]
    except UnicodeError:
        raise PathRefused(f"'{_shown(name)}' cannot be encoded as a file name") from None
    longest = max(encoded, key=len, default=b"")
    # '_part001' and a suffix may be added to the last component.
    if len(longest) > NAME_MAX_BYTES - 16:
        raise PathRefused(f"'{_shown(name)}': a name part of {len(longest)} bytes is too long "
                          f"(at most {NAME_MAX_BYTES - 16} bytes per file or directory name)")


class RecordTarget:
    """The file(s) of one recording: base path, or numbered parts when rotating."""

    def __init__(self, base: Path, rotating: bool):
        self.base = base
        self.rotating = rotating

    def part(self, number: int) -> Path:
        if not self.rotating:
            return self.base
        return self.base.with_name(f"{self.base.stem}_part{number:03d}{self.base.suffix}")

    def taken(self) -> bool:
        """Whether a file of this recording exists already (the base or any part)."""
        if self.base.exists():
            return True
        return self.rotating and any(self.base.parent.glob(f"{self.base.stem}_part*"
                                                           f"{self.base.suffix}"))


def plan(settings: RecordFileSettings, requested: str, suffix: str, now: float,
         prefix: str = "streamed_data") -> RecordTarget:
    """The files a recording named `requested` ('' = `<prefix>_YYYYmmdd_HHMMSS`) will write."""
    directory = record_root(settings.record_directory)
    if requested:
        target = RecordTarget(confine(requested, directory, suffix), settings.rotating)
        if target.taken():
            raise PathRefused(f"{target.base} exists: a recording never appends to a file; "
                              "choose another name")
        return target
    stem = time.strftime(f"{prefix}_%Y%m%d_%H%M%S", time.localtime(now))
    target, counter = RecordTarget(directory / f"{stem}{suffix}", settings.rotating), 1
    while target.taken():
        target = RecordTarget(directory / f"{stem}_{counter}{suffix}", settings.rotating)
        counter += 1
    return target


def create_new(path: Path) -> None:
    """Create path empty, failing if it exists (O_EXCL): no two writers, no appending."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        raise PathRefused(f"{path} exists: a recording never appends to a file") from None
    except OSError as error:
        raise ConfigError(f"cannot record to {path}: {error.strerror or error}") from None


def free_bytes(directory: Path) -> int:
    """Free space for this user on the disk holding directory (its nearest existing parent)."""
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return shutil.disk_usage(directory).free


def disk_problem(settings: RecordFileSettings, directory: Path, free=free_bytes) -> str:
    """'' while there is room, else the ERROR line that stops the recording."""
    if not settings.min_free_bytes:
        return ""
    available = free(directory)
    if available >= settings.min_free_bytes:
        return ""
    return (f"recording stopped: {available / MIB:.0f} MiB free on the disk of {directory}, "
            f"below min_free_bytes ({settings.min_free_bytes / MIB:.0f} MiB)")
