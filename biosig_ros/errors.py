"""Errors that the nodes turn into a clear message instead of a traceback."""


class ConfigError(ValueError):
    """A parameter, configuration file or input file is invalid; the message names it."""


# The pip-installed core's extras (setup.py extras_require) and what each brings.
CORE_DISTRIBUTION = "biosig-ros-core"


def missing_extra(error: ImportError, what: str, extra: str) -> ConfigError:
    """One line for a feature whose optional dependency is not installed: which module, and
    the pip command of the extra that brings it (instead of a ModuleNotFoundError traceback)."""
    module = getattr(error, "name", None) or str(error)
    return ConfigError(f"{what} needs the '{extra}' extra ({module} is not installed): "
                       f"pip install \"{CORE_DISTRIBUTION}[{extra}]\" (or \".[{extra}]\" in a "
                       "checkout)")
