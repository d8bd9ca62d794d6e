"""Match incoming markers to a model's markers by name, never by position in the array.

Incoming names may be renamed first with a name map (`incoming=model` entries, or a mapping).
Vicon Nexus labels markers `Subject:MARKER`: such a name that is neither mapped nor a model
marker matches MARKER (the map may name either form). Names the model does not know, model
markers the stream never provides and duplicated names are reported once each, as plain
sentences the node logs. Occluded markers (flagged, NaN, or exactly (0, 0, 0)
as Vicon sends them) come out as NaN so that they never pull the solution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from biosig_ros.errors import ConfigError


def parse_name_map(entries: Sequence[str] | Mapping[str, str], model_names: Sequence[str],
                   parameter: str = "marker_name_map") -> dict[str, str]:
    """['incoming=model', ...] or {incoming: model} -> {incoming: model}; ConfigError naming the
    parameter when an entry is malformed, maps a name twice, or targets a marker the model does
    not have."""
    known = set(model_names)
    mapping: dict[str, str] = {}
    if isinstance(entries, Mapping):
        entries = [f"{incoming}={target}" for incoming, target in entries.items()]
    for entry in entries:
        incoming, separator, target = str(entry).rpartition("=")
        incoming, target = incoming.strip(), target.strip()
        if not separator or not incoming or not target:
            raise ConfigError(f"parameter '{parameter}': entry {entry!r} is not 'incoming=model'")
        if target not in known:
            raise ConfigError(f"parameter '{parameter}': entry {entry!r} maps to {target!r}, "
                              f"which is not a model marker ({', '.join(model_names)})")
        if incoming in mapping:
            raise ConfigError(f"parameter '{parameter}': {incoming!r} is mapped twice")
        mapping[incoming] = target
    return mapping


@dataclass
class MatchedMarkers:
    positions: np.ndarray  # model markers x 3, NaN where occluded or not provided
    visible: np.ndarray    # bool per model marker


class MarkerMatcher:
    """Reorders each frame's markers into the model's order.

    The index table is rebuilt only when the incoming name list changes, so a steady stream
    costs one fancy-indexing per frame.
    """

    def __init__(self, model_names: Sequence[str], name_map: dict[str, str] | None = None,
                 zero_is_occluded: bool = True, strip_subject_prefix: bool = True):
        self.model_names = list(model_names)
        self._model_index = {name: i for i, name in enumerate(self.model_names)}
        self._name_map = dict(name_map or {})
        self._zero_is_occluded = zero_is_occluded
        self._strip = strip_subject_prefix
        self.subjects: list[str] = []  # prefixes stripped in the current layout
        self._layout: tuple[str, ...] | None = None
        self._source = np.zeros(0, dtype=int)   # incoming index used for each model marker
        self._target = np.zeros(0, dtype=int)   # the model marker it fills
        self._reported: set[tuple[str, str]] = set()
        self._pending: list[str] = []
        self.unknown_names: list[str] = []
        self.missing_names: list[str] = []

    def reports(self) -> list[str]:
        """Problems found since the last call, each reported once per run."""
        pending, self._pending = self._pending, []
        return pending

    def match(self, names: Sequence[str], positions: np.ndarray,
              occluded: np.ndarray | None = None) -> MatchedMarkers:
        """positions: incoming markers x 3 in the order of names (already in metres)."""
        positions = np.asarray(positions, dtype=float).reshape(-1, 3)
        if len(names) != len(positions):
            raise ValueError(f"{len(names)} marker names for {len(positions)} positions")
        layout = tuple(names)
        if layout != self._layout:
            self._rebuild(layout)
        out = np.full((len(self.model_names), 3), np.nan)
        out[self._target] = positions[self._source]
        hidden = ~np.isfinite(out).all(axis=1)
        if occluded is not None and len(occluded):
            flags = np.asarray(occluded, dtype=bool)
            hidden[self._target] |= flags[self._source]
        if self._zero_is_occluded:
            hidden |= (out == 0.0).all(axis=1)
        out[hidden] = np.nan
        return MatchedMarkers(out, ~hidden)

    def _rebuild(self, layout: tuple[str, ...]) -> None:
        self._layout = layout
        source, target, unknown, duplicated = [], [], [], []
        filled: set[int] = set()
        subjects: dict[str, None] = {}
        for incoming_index, incoming in enumerate(layout):
            name = self._name_map.get(incoming, incoming)
            if self._strip and name not in self._model_index and ":" in name:
                subject, _, bare = name.rpartition(":")
                name = self._name_map.get(bare, bare)
                if name in self._model_index:
                    subjects[subject] = None
            model_index = self._model_index.get(name)
            if model_index is None:
                unknown.append(incoming)
            elif model_index in filled:
                duplicated.append(name)
            else:
                filled.add(model_index)
                source.append(incoming_index)
                target.append(model_index)
        self._source = np.array(source, dtype=int)
        self._target = np.array(target, dtype=int)
        self.unknown_names = unknown
        self.subjects = list(subjects)
        if subjects:
            self._report("subject", self.subjects,
                         "marker names carry a subject prefix (Vicon), matched without it")
        self.missing_names = [n for i, n in enumerate(self.model_names) if i not in filled]
        self._report("unknown", unknown,
                     "incoming marker(s) not in the model, ignored (map them with "
                     "marker_name_map 'incoming=model' if they are model markers)")
        self._report("missing", self.missing_names,
                     "model marker(s) not in the incoming stream, treated as occluded")
        self._report("duplicated", duplicated,
                     "marker name(s) given more than once in a frame, first one used")

    def _report(self, kind: str, names: list[str], sentence: str) -> None:
        new = [n for n in names if (kind, n) not in self._reported]
        if new:
            self._reported.update((kind, n) for n in new)
            self._pending.append(f"{sentence}: {', '.join(new)}")
