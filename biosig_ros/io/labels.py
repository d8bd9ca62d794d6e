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
    why: str = ""      # how the subject was chosen among several


def split_subject(labels: Sequence[str], subject: str = "",
                  model_names: Sequence[str] | None = None) -> SplitLabels:
    """`Subject:MARKER` labels -> bare names and the subject.

    Labels without a prefix are kept as they are (subject: the argument) when no label has
    one. With prefixes, the markers of one subject are kept: the only subject present, the
    argument among several, or else the subject whose markers match the most model_names (a
    Nexus capture with a second labelled object); `why` says how it was chosen. ConfigError
    naming the subjects (and their matches) when none can be chosen. Unprefixed labels beside
    prefixed ones (Nexus's unlabelled `*12` trajectories) are left out."""
    prefixes = Counter(label.split(":", 1)[0] for label in labels if ":" in label)
    if not prefixes:
        return SplitLabels(list(range(len(labels))), list(labels), subject, [])
    why = ""
    if len(prefixes) == 1:
        (chosen,) = prefixes
    elif subject in prefixes:
        chosen = subject
    else:
        chosen, why = _subject_matching_the_model(labels, sorted(prefixes), subject,
                                                  model_names)
    kept, names, left_out = [], [], []
    for i, label in enumerate(labels):
        prefix, separator, name = label.partition(":")
        if separator and prefix == chosen:
            kept.append(i)
            names.append(name)
        else:
            left_out.append(label)
    return SplitLabels(kept, names, chosen, left_out, why)


def _subject_matching_the_model(labels, subjects: list[str], asked: str,
                                model_names: Sequence[str] | None) -> tuple[str, str]:
    asked_for = f"no subject {asked!r}; " if asked else ""
    if not model_names:
        raise ConfigError(f"{asked_for}markers of several subjects ({', '.join(subjects)}): set "
                          "parameter 'subject' to the one to replay (or give a model: the "
                          "subject matching it is picked)")
    model = {name_key(n) for n in model_names}
    counts = {s: sum(1 for label in labels if label.startswith(f"{s}:")
                     and name_key(label.partition(":")[2]) in model) for s in subjects}
    ranked = sorted(subjects, key=lambda s: -counts[s])
    told = ", ".join(f"{s} {counts[s]}" for s in ranked)
    best = ranked[0]
    if counts[best] == 0 or counts[best] == counts[ranked[1]]:
        raise ConfigError(f"{asked_for}markers of several subjects, none matching the model "
                          f"best (model markers matched: {told} of {len(model_names)}): set "
                          "parameter 'subject' to the one to replay")
    return best, (f"subject {best!r} picked among {len(subjects)} subjects: its markers match "
                  f"{counts[best]} of the model's {len(model_names)} (matched: {told}; "
                  "parameter 'subject' picks another)")


def name_key(name: str) -> str:
    """A marker name compared without case and separators: `Acrom`, `ACROM`, `ac_rom`."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", name.lower()) if w]


def _stem_pairs(a: str, b: str) -> list[tuple[str, str]]:
    """Keys to compare for a prefix: the whole names, and a multi-word name's first or last
    word (a suffix or prefix word dropped) against a one-word name (`ACRO_tip` ~ `Acrom`,
    `R_Acrom` ~ `Acrom`; never `SCAP_IA` ~ `SCAP_AA`)."""
    words_a, words_b = _words(a), _words(b)
    pairs = [(name_key(a), name_key(b))]
    if len(words_a) > 1 and len(words_b) == 1:
        pairs += [(words_a[0], words_b[0]), (words_a[-1], words_b[0])]
    if len(words_b) > 1 and len(words_a) == 1:
        pairs += [(words_a[0], words_b[0]), (words_a[0], words_b[-1])]
    return pairs


MIN_STEM = 3          # a prefix match needs this many characters (C7 never becomes M7)


def _likeness(recording_name: str, model_name: str) -> int:
    """0 = no; 2 = same name but case/separators; 1 = one is a prefix of the other (after
    dropping a suffix or prefix word: `ACRO_tip` ~ `Acrom`). No spelling distance: marker
    names one letter apart mean other places (EPICl/EPICm, SCAP_IA/SCAP_AA, C7/M7)."""
    a, b = name_key(recording_name), name_key(model_name)
    if a == b:
        return 2
    for x, y in _stem_pairs(recording_name, model_name):
        shorter, longer = sorted((x, y), key=len)
        if len(shorter) >= MIN_STEM and longer.startswith(shorter) and \
                len(longer) - len(shorter) <= max(2, len(shorter) // 2):
            return 1
    return 0


@dataclass
class NameSuggestions:
    """Recording names that look like model markers the recording lacks: `mapping`
    {recording name: model name} (each unambiguous, usable as IK's marker_name_map), and
    `ambiguous` {model name: candidates} where several fit equally."""

    mapping: dict[str, str]
    ambiguous: dict[str, list[str]]

    def name_map_entries(self) -> list[str]:
        return [f"{incoming}={model}" for incoming, model in self.mapping.items()]


def suggest_names(missing: Sequence[str], unknown: Sequence[str]) -> NameSuggestions:
    """For each model marker missing from the recording, the recording name (not known to the
    model) that looks like it: same name in another case or with other separators, or a
    prefix of it once a suffix or prefix word is dropped. The best kind wins; a tie is
    reported as ambiguous rather than guessed."""
    mapping: dict[str, str] = {}
    ambiguous: dict[str, list[str]] = {}
    taken: set[str] = set()
    scored = [(max((_likeness(u, m) for u in unknown), default=0), m) for m in missing]
    for best, model_name in sorted(scored, key=lambda item: -item[0]):
        if best == 0:
            continue
        candidates = [u for u in unknown if u not in taken and _likeness(u, model_name) == best]
        rivals = [m for m in missing if m != model_name and candidates
                  and _likeness(candidates[0], m) == best]
        if len(candidates) == 1 and not rivals:
            mapping[candidates[0]] = model_name
            taken.add(candidates[0])
        elif candidates:  # several names for it, or one name fitting several markers
            ambiguous[model_name] = candidates
    return NameSuggestions(mapping, ambiguous)


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
