"""Typed settings dataclasses built from plain values (YAML, ROS parameters), with checks.

Each processor or device describes its parameters as a dataclass whose __post_init__ raises
ConfigError naming a bad value; coerce_value turns YAML/ROS numbers and lists into the field's
type so that `10` is accepted where a float is expected.
"""
from __future__ import annotations

import dataclasses
import typing

from biosig_ros.errors import ConfigError

_SCALARS = (bool, int, float, str)


def coerce_value(name: str, value, annotation):
    """Convert a YAML/ROS value to the annotated field type, or raise ConfigError naming it."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        (item_type,) = typing.get_args(annotation)[:1] or (str,)
        if value is None:
            return []
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"parameter '{name}' must be a list, got {value!r}")
        return [coerce_value(name, v, item_type) for v in value]
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in typing.get_args(annotation) if a is not type(None)][0]
        return None if value is None else coerce_value(name, value, inner)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation in _SCALARS and not isinstance(value, annotation):
        raise ConfigError(
            f"parameter '{name}' must be a {annotation.__name__}, got {value!r}")
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"parameter '{name}' must be an int, got {value!r}")
    return value


def require_choice(name: str, value, choices) -> None:
    """ConfigError "parameter 'name' must be one of a, b, got 'x'" unless value is a choice."""
    if value not in choices:
        raise ConfigError(f"parameter '{name}' must be one of {', '.join(choices)}, "
                          f"got {value!r}")


def doc_field(default, doc: str, *, range: tuple | None = None, runtime: bool = False):
    """A settings field with its documentation (the one place a parameter is described),
    optional numeric range (lo, hi; None = unbounded) and whether it may change at run time."""
    metadata = {"doc": doc}
    if range is not None:
        metadata["range"] = range
    if runtime:
        metadata["runtime"] = True
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def realtime_priority_field():
    """The `realtime_priority` parameter of the nodes between a device and a robot's command."""
    return doc_field(
        0, "SCHED_FIFO priority (1-99) for this node's threads, so that on a busy PC the chain "
        "a robot acts on runs before everything else (docs/robot_integration.md); 0 = normal "
        "scheduling. Needs CAP_SYS_NICE or an rtprio limit: when refused, a warning and normal "
        "scheduling", range=(0, 99))


def field_default(field: dataclasses.Field):
    """The default of a dataclass field (None when it has none), tuples as lists."""
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
    else:
        return None
    if isinstance(value, tuple):
        value = list(value)
    return value


def build_settings(settings_type: type, values: dict):
    """Instantiate settings_type, turning its validation errors into ConfigError."""
    try:
        return settings_type(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid parameters for {settings_type.__name__}: {error}") from error
