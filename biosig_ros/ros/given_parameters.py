"""The parameter values a node was given at start, read from its command line as rcl reads it.

rcl merges parameter files and `-p name:=value` into one value per parameter, and where two of
them disagree on the type it keeps one silently: with `ik_wu.yaml` giving
`divergence_residual: 0.01`, a `-p divergence_residual:=abc` (the runner's `--set`) simply
disappears and the node runs on the file's value. Reading the arguments again here lets the
node check every value it was given, not only the one rcl kept, and refuse a wrong type with
one line (exit status 2) instead.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

_PARAMETER_FLAGS = ("-p", "--param")


class _RclLoader(yaml.SafeLoader):
    """YAML as rcl types it: PyYAML (YAML 1.1) reads `6e-05` or `1e3` as strings, rcl as
    doubles (as Python's repr writes small floats)."""


_RclLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _load(text: str):
    return yaml.load(text, Loader=_RclLoader)  # noqa: S506 - a SafeLoader subclass
_FILE_FLAGS = ("--params-file",)


@dataclass(frozen=True)
class GivenValue:
    value: object
    source: str   # "the command line" or the parameter file's path


def given_values(node_name: str, argv: list[str] | None = None) -> dict[str, list[GivenValue]]:
    """Every value given to the node `node_name` (fully qualified, e.g. /s1/ik) by
    `--ros-args` in argv (default sys.argv), per parameter name, files first, in order."""
    given: dict[str, list[GivenValue]] = {}
    words = list(sys.argv if argv is None else argv)
    files, assignments = [], []
    in_ros_args = False
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--ros-args":
            in_ros_args = True
        elif word == "--":
            in_ros_args = False
        elif in_ros_args and index + 1 < len(words):
            if word in _PARAMETER_FLAGS:
                assignments.append(words[index + 1])
                index += 1
            elif word in _FILE_FLAGS:
                files.append(words[index + 1])
                index += 1
        index += 1
    for path in files:
        for name, value in _file_values(path, node_name):
            given.setdefault(name, []).append(GivenValue(value, path))
    for assignment in assignments:
        name, separator, text = assignment.partition(":=")
        if not separator:
            continue
        try:
            value = _load(text)
        except yaml.YAMLError:
            value = text
        given.setdefault(name, []).append(GivenValue(value, "the command line"))
    return given


def _file_values(path: str, node_name: str):
    try:
        document = _load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return  # rcl has already refused such a file (node_runner reports it)
    for pattern, parameters in _sections(document, []):
        if _matches(pattern, node_name):
            yield from _flatten(parameters, "")


def _sections(document, path: list[str]):
    """(node-name pattern, ros__parameters mapping) of a parameter file, nested keys joined."""
    if not isinstance(document, dict):
        return
    for key, value in document.items():
        if key == "ros__parameters":
            yield "/".join(path), value
        else:
            yield from _sections(value, path + [str(key).strip("/")])


def _flatten(parameters, prefix: str):
    if not isinstance(parameters, dict):
        return
    for key, value in parameters.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _matches(pattern: str, node_name: str) -> bool:
    """rcl's node-name wildcards: ** any number of tokens, * one token."""
    expression = ""
    for part in re.split(r"(\*\*/|\*\*|\*)", pattern.strip("/")):
        expression += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*"}.get(part, re.escape(part))
    return re.fullmatch(expression, node_name.strip("/")) is not None
