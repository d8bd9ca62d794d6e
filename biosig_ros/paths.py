"""Where the package's shipped files are, and how relative paths in config files resolve."""
from __future__ import annotations

from pathlib import Path

PACKAGE = "biosig_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The package share directory (config/, data/, launch/): the install space's when the
    package is installed with colcon and ament_index is importable, else the source checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - no ament index (pip install) or package not installed
        return _SOURCE_ROOT


def config_dir() -> Path:
    return share_dir() / "config"


def resolve_data_path(path: str) -> Path:
    """An absolute path as is; a relative one from the working directory when it exists there,
    else from the package share directory (so `data/abd.bio` works from anywhere)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    shared = share_dir() / candidate
    return shared if shared.exists() else candidate
