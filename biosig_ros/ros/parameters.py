"""Declare a settings dataclass as typed ROS parameters, and keep it in step with them.

Every node describes its parameters as a dataclass (the core's settings type when there is one);
each field becomes one ROS parameter with the field's type, default, description
(metadata "doc") and, where numeric, range (metadata "range"). Fields marked
metadata "runtime": True may change while the node runs: a new value is validated by rebuilding
the dataclass and handed to the node's on_change hook. Every other field is read-only: a set at
run time is refused with a reason, since the node only reads it at start.
"""
from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Callable

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                              ParameterUninitializedException)
from rclpy.node import Node
from rclpy.parameter import Parameter

from biosig_ros.errors import ConfigError
from biosig_ros.ros.given_parameters import given_values
from biosig_ros.settings import build_settings, coerce_value, field_default

_SCALAR_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER,
                 float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING}
_ARRAY_TYPES = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}
_FLOAT_LIMIT = sys.float_info.max
_INT_LIMIT = 2 ** 63 - 1


def parameter_type(annotation) -> Parameter.Type | None:
    """The ROS parameter type of a field annotation; None for Optional/other (dynamic)."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return _ARRAY_TYPES.get(args[0] if args else str)
    return _SCALAR_TYPES.get(annotation)


def is_runtime(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("runtime", False))


def describe_field(name: str, field: dataclasses.Field, ros_type: Parameter.Type | None,
                   writable: bool) -> ParameterDescriptor:
    """The ParameterDescriptor of one settings field."""
    doc = field.metadata.get("doc", "")
    descriptor = ParameterDescriptor(name=name, description=doc, read_only=not writable)
    if ros_type is None:
        descriptor.dynamic_typing = True
    else:
        descriptor.type = ros_type.value
    bounds = field.metadata.get("range")
    if bounds is not None and ros_type == Parameter.Type.DOUBLE:
        low, high = (_FLOAT_LIMIT * -1 if bounds[0] is None else float(bounds[0]),
                     _FLOAT_LIMIT if bounds[1] is None else float(bounds[1]))
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=low, to_value=high, step=0.0)]
    elif bounds is not None and ros_type == Parameter.Type.INTEGER:
        low, high = (-_INT_LIMIT if bounds[0] is None else int(bounds[0]),
                     _INT_LIMIT if bounds[1] is None else int(bounds[1]))
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    if not writable:
        descriptor.additional_constraints = "read-only: read at start (restart the node)"
    return descriptor


def _normalise_override(node: Node, name: str, ros_type: Parameter.Type | None) -> bool:
    """Make a file/command-line value of an equivalent type acceptable: YAML `10` for a float
    parameter, integers in a float list. Returns True when an empty list was given (YAML's
    `[]`, which rcl cannot type and gives as NOT_SET): the override is removed and the caller
    declares the parameter as the empty list of its type, not its default."""
    overrides = getattr(node, "_parameter_overrides", None)
    if not overrides or name not in overrides or ros_type is None:
        return False
    value = overrides[name].value
    if ros_type == Parameter.Type.DOUBLE and isinstance(value, int) and not isinstance(value, bool):
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(value))
    elif ros_type in _ARRAY_TYPES.values() and (value is None or len(value) == 0):
        del overrides[name]
        return True
    elif ros_type == Parameter.Type.DOUBLE_ARRAY and value is not None and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in value])


def _type_problem(value, ros_type: Parameter.Type) -> bool:
    """Whether a given value cannot be a parameter of ros_type (an integer is a float)."""
    def scalar_ok(item, kind) -> bool:
        if kind is float:
            return isinstance(item, (int, float)) and not isinstance(item, bool)
        if kind is int:
            return isinstance(item, int) and not isinstance(item, bool)
        return isinstance(item, kind)

    for kind, scalar in _SCALAR_TYPES.items():
        if ros_type == scalar:
            return not scalar_ok(value, kind)
        if ros_type == _ARRAY_TYPES[kind]:
            return not isinstance(value, list) or not all(scalar_ok(v, kind) for v in value)
    return False


_KINDS = {Parameter.Type.BOOL: "true or false", Parameter.Type.INTEGER: "an integer",
          Parameter.Type.DOUBLE: "a number", Parameter.Type.STRING: "a string",
          Parameter.Type.BOOL_ARRAY: "a list of true/false", Parameter.Type.INTEGER_ARRAY:
          "a list of integers", Parameter.Type.DOUBLE_ARRAY: "a list of numbers",
          Parameter.Type.STRING_ARRAY: "a list of strings"}


def check_given_types(node: Node, name: str, ros_type: Parameter.Type | None) -> None:
    """ConfigError when any value given at start for parameter `name` (a parameter file, a
    `-p`) has the wrong type, including those rcl dropped silently (see given_parameters)."""
    if ros_type is None:
        return
    given = getattr(node, "_biosig_given_values", None)
    if given is None:
        given = given_values(node.get_fully_qualified_name())
        node._biosig_given_values = given
    for item in given.get(name, ()):
        if _type_problem(item.value, ros_type):
            raise ConfigError(f"parameter '{name}' must be {_KINDS[ros_type]}, got "
                              f"{item.value!r} (from {item.source})")


def _declare_empty_list(node: Node, name: str, ros_type: Parameter.Type,
                        descriptor: ParameterDescriptor) -> None:
    """Declare a list parameter whose value is the empty list of its type.

    rclpy types an empty Python list as a byte array, and declaring by type leaves the value
    NOT_SET, which breaks "get every parameter" (ros2 param dump, rqt_reconfigure). So it is
    declared by type and its value set to a typed empty list directly (the node's own
    parameter table: a set through the API is refused for read-only parameters)."""
    descriptor.type = ros_type.value
    node.declare_parameter(name, ros_type, descriptor)
    node._parameters[name] = Parameter(name, ros_type, [])


def declare_settings(node: Node, settings_type: type, prefix: str = "",
                     on_change: Callable | None = None):
    """Declare one typed parameter per dataclass field (named prefix + field) and build the
    settings from their values (ConfigError naming a bad one).

    on_change(new_settings, changed_names) is called when fields marked runtime change; it may
    raise ConfigError to refuse. Without on_change every field is read-only."""
    hints = typing.get_type_hints(settings_type)
    values = {}
    fields = {}
    for field in dataclasses.fields(settings_type):
        if not field.init:
            continue
        name = prefix + field.name
        fields[name] = field
        default = field_default(field)
        ros_type = parameter_type(hints[field.name])
        writable = is_runtime(field) and on_change is not None
        descriptor = describe_field(name, field, ros_type, writable)
        check_given_types(node, name, ros_type)
        given_empty = _normalise_override(node, name, ros_type)
        overridden = name in (getattr(node, "_parameter_overrides", None) or {})
        try:
            if ros_type is None:
                node.declare_parameter(name, default, descriptor)
            elif given_empty or (default == [] and not overridden):
                _declare_empty_list(node, name, ros_type, descriptor)
            elif default is None or default == []:
                descriptor.type = ParameterType.PARAMETER_NOT_SET
                node.declare_parameter(name, ros_type, descriptor)
            else:
                node.declare_parameter(name, default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            raise ConfigError(f"parameter '{name}': {_first_line(error)}") from None
        try:
            value = node.get_parameter(name).value
        except ParameterUninitializedException:
            value = None
        values[field.name] = coerce_value(name, default if value is None else value,
                                          hints[field.name])
    settings = build_settings(settings_type, values)
    if on_change is not None:
        _watch(node, settings_type, settings, prefix, fields, hints, on_change)
    return settings


def _watch(node: Node, settings_type: type, settings, prefix: str, fields: dict, hints: dict,
           on_change: Callable) -> None:
    current = [settings]

    def on_set(parameters) -> SetParametersResult:
        changed = {}
        for parameter in parameters:
            field = fields.get(parameter.name)
            if field is None:
                continue
            if not is_runtime(field):  # read-only descriptors are refused before this
                return SetParametersResult(successful=False, reason=(
                    f"parameter '{parameter.name}' is read at start: restart the node"))
            changed[field.name] = parameter.value
        if not changed:
            return SetParametersResult(successful=True)
        try:
            coerced = {key: coerce_value(prefix + key, value, hints[key])
                       for key, value in changed.items()}
            updated = dataclasses.replace(current[0], **coerced)
            on_change(updated, sorted(coerced))
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        except (TypeError, ValueError) as error:
            return SetParametersResult(successful=False, reason=_first_line(error))
        current[0] = updated
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def undeclared_overrides(node: Node) -> list[str]:
    """Parameter-file / command-line keys given to this node that it never declared."""
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    return sorted(name for name in overrides
                  if not node.has_parameter(name) and not name.startswith("qos_overrides."))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


__all__ = ["declare_settings", "describe_field", "parameter_type", "undeclared_overrides",
           "build_settings"]
