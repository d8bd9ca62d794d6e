"""The documentation of parameters and launch arguments is generated from one place (the
settings dataclasses, graph_spec) and must be up to date; the shipped YAML files only name
parameters that their nodes declare, and their "(runtime)" notes match the dataclasses."""
import re

import pytest
import yaml

from biosig_ros.graph_spec import GRAPHS
from biosig_ros.ros.parameter_docs import NODE_SETTINGS, generated_docs, node_fields
from biosig_ros.settings import field_default

from ros_harness import REPO

CONFIG_FILES = sorted({(params_file, spec.executable) for graph in GRAPHS.values()
                       for spec in graph for params_file in spec.params})


def test_generated_docs_are_up_to_date():
    stale = [str(path.relative_to(REPO)) for path, content in generated_docs(REPO / "docs").items()
             if not path.exists() or path.read_text(encoding="utf-8") != content]
    assert not stale, f"run `python tools/gen_param_docs.py` (out of date: {', '.join(stale)})"


@pytest.mark.parametrize("executable", sorted(NODE_SETTINGS))
def test_every_parameter_is_documented_with_its_default(executable):
    text = (REPO / "docs" / "nodes" / f"{executable}.md").read_text(encoding="utf-8")
    undocumented = []
    for name, field, _ in node_fields(executable):
        if not str(field.metadata.get("doc", "")).strip():
            undocumented.append(name)
        row = re.search(rf"^\| `{re.escape(name)}` \|[^|]*\| `([^`]*)` \|", text, re.M)
        assert row, f"{name} missing from docs/nodes/{executable}.md"
        value = yaml.safe_load(row.group(1)) if row.group(1) != "(unset)" else None
        assert value == field_default(field), name
    assert not undocumented, f"{executable}: no doc metadata for {', '.join(undocumented)}"


@pytest.mark.parametrize("config_file,executable", CONFIG_FILES)
def test_shipped_yaml_names_only_declared_parameters(config_file, executable):
    if executable not in NODE_SETTINGS:
        pytest.skip(f"{executable} is not a ROS node")
    parameters = yaml.safe_load((REPO / "config" / config_file).read_text(encoding="utf-8"))["/**"][
        "ros__parameters"]
    declared = {name for name, _, _ in node_fields(executable)}
    assert not set(parameters) - declared, f"{config_file}: unknown keys"


@pytest.mark.parametrize("config_file,executable", CONFIG_FILES)
def test_runtime_notes_in_yaml_comments_match_the_settings(config_file, executable):
    if executable not in NODE_SETTINGS:
        pytest.skip(f"{executable} is not a ROS node")
    runtime = {name: bool(field.metadata.get("runtime")) for name, field, _ in
               node_fields(executable)}
    lines = (REPO / "config" / config_file).read_text(encoding="utf-8").splitlines()
    noted = {m.group(1): "(runtime)" in line for line in lines
             if (m := re.match(r"^    ([a-z_0-9]+):", line))}
    if not any(noted.values()):
        return  # this file does not mark runtime parameters
    wrong = [name for name, marked in noted.items() if marked != runtime.get(name, False)]
    assert not wrong, f"{config_file}: '(runtime)' notes disagree with the settings: {wrong}"
