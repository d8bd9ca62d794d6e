"""Reading and writing the package's own YAML files (MVC calibrations, torque channel maps)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from biosig_ros.errors import ConfigError


def read_yaml(path: Path, what: str, missing: str | None = None) -> object:
    """The parsed content of a YAML file; ConfigError naming `what` (e.g. "MVC file") if the
    file is absent (`missing` replaces that message) or not valid YAML."""
    if not path.is_file():
        raise ConfigError(missing or f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {path} is not valid YAML: {error}") from error


def write_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` (parents created) through a temporary file renamed over it: a
    crash never leaves half a file."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
