"""Channel and marker labels as real systems write them (ROS-free).

Vicon Nexus names a subject's markers `Subject:MARKER` and its analog channels
`Device.Output` (`Delt_ant.EMG1`, `Sensor 16.EMG16`, `Fx1`); a model knows the bare marker
names. These helpers pick the EMG channels by a label pattern, split the subject prefix off the
marker labels, and read a `.bioMod` file's marker names without loading biorbd.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from biosig_ros.errors import ConfigError


def pick_channels(labels: Sequence[str], wanted: Sequence[str], pattern: str,
                  what: str = "analog channel") -> list[int]:
    """Indices of the channels to use: the `wanted` labels in that order when given (ConfigError
    naming the absent ones), else every label that the regular expression `pattern` finds
    (case-insensitive; "" = all), in file order (possibly none)."""
    labels = list(labels)
    if wanted:
        missing = [n for n in wanted if n not in labels]
        if missing:
            raise ConfigError(f"no {what} named {', '.join(missing)} "
                              f"(available: {', '.join(labels)})")
        return [labels.index(n) for n in wanted]
    if not pattern:
        return list(range(len(labels)))
    try:
        expression = re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ConfigError(f"parameter 'emg_channel_pattern': {pattern!r} is not a regular "
                          f"expression ({error})") from error
    return [i for i, label in enumerate(labels) if expression.search(label)]


@dataclass
class SplitLabels:
    """Marker labels with the subject prefix taken off: `indices` of the labels kept (the
    chosen subject's), their bare `names`, the `subject`, and the labels left out."""

    indices: list[int]
    names: list[str]
    subject: str
    left_out: list[str]


def split_subject(labels: Sequence[str], subject: str = "") -> SplitLabels:
    """`Subject:MARKER` labels -> bare names and the subject.

    Labels without a prefix are kept as they are (subject: the argument) when no label has
    one. With prefixes, the markers of one subject are kept: the only subject present, or the
    argument among several (else a ConfigError naming them). Unprefixed labels beside
    prefixed ones (Nexus's unlabelled `*12` trajectories) are left out."""
    prefixes = Counter(label.split(":", 1)[0] for label in labels if ":" in label)
    if not prefixes:
        return SplitLabels(list(range(len(labels))), list(labels), subject, [])
    if len(prefixes) == 1:
        (chosen,) = prefixes
    elif subject in prefixes:
        chosen = subject
    else:
        raise ConfigError(f"markers of several subjects ({', '.join(sorted(prefixes))}): set "
                          "parameter 'subject' to the one to replay")
    kept, names, left_out = [], [], []
    for i, label in enumerate(labels):
        prefix, separator, name = label.partition(":")
        if separator and prefix == chosen:
            kept.append(i)
            names.append(name)
        else:
            left_out.append(label)
    return SplitLabels(kept, names, chosen, left_out)


_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


def biomod_marker_names(path: str | Path) -> list[str]:
    """The marker names of a `.bioMod` file in file order (comments skipped), read as text:
    fast, and biorbd need not be installed. ConfigError when the file cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise ConfigError(f"model file not readable: {path} ({error.strerror})") from error
    words = _COMMENTS.sub(" ", text).split()
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word.lower() == "marker"]
