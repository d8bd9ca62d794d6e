"""Declare a settings dataclass as ROS parameters and build it from their values.

Every node describes its parameters as a dataclass (the core's settings type when there is one):
one ROS parameter per field, with the field's default; values come from the YAML file or the
command line and are checked by biosig_ros.settings and the dataclass itself.
"""
from __future__ import annotations

import dataclasses
import typing

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from biosig_ros.settings import build_settings, coerce_value, field_default


def declare_settings(node: Node, settings_type: type, prefix: str = ""):
    """Declare a parameter per dataclass field (named prefix + field) and build the settings."""
    hints = typing.get_type_hints(settings_type)
    values = {}
    for field in dataclasses.fields(settings_type):
        if not field.init:
            continue
        name = prefix + field.name
        default = field_default(field)
        descriptor = ParameterDescriptor(
            dynamic_typing=True, description=field.metadata.get("doc", ""))
        if default is None or default == []:
            # rclpy cannot type an empty list or None; dynamic typing accepts what YAML gives.
            node.declare_parameter(name, None, descriptor)
        else:
            node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        values[field.name] = coerce_value(name, default if value is None else value, hints[field.name])
    return build_settings(settings_type, values)
