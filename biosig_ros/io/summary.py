"""What a recording holds and how it meets a model, as lines to print at start (ROS-free)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from biosig_ros.io.labels import NameSuggestions, suggest_names
from biosig_ros.io.recording import Recording


@dataclass
class MarkerMatch:
    """Model markers found in the recording (by name), model markers it lacks, and the
    recording's markers that the model does not know."""

    matched: list[str]
    missing: list[str]
    unknown: list[str]
    suggested: NameSuggestions


def match_markers(recording_names: Sequence[str], model_names: Sequence[str]) -> MarkerMatch:
    present = set(recording_names)
    known = set(model_names)
    missing = [n for n in model_names if n not in present]
    unknown = [n for n in recording_names if n not in known]
    return MarkerMatch([n for n in model_names if n in present], missing, unknown,
                       suggest_names(missing, unknown))


def suggestion_lines(suggested: NameSuggestions) -> list[str]:
    """The suggested name map as the one line to set, and the ambiguous names."""
    lines = []
    if suggested.mapping:
        pairs = ", ".join(f"{a} -> {b}" for a, b in suggested.mapping.items())
        entries = ", ".join(suggested.name_map_entries())
        lines.append(f"suggested name map: {pairs}: set IK's marker_name_map to [{entries}] "
                     f"(tools/run demo ... --set \"ik.marker_name_map=[{entries}]\")")
    for model_name, candidates in suggested.ambiguous.items():
        lines.append(f"model marker {model_name} may be {' or '.join(candidates)} (ambiguous: "
                     "not suggested)")
    return lines


def summary_lines(recording: Recording, model_names: Sequence[str] | None = None,
                  model_path: str = "") -> list[str]:
    """Rates, units, channels, the automatic choices made, and the model match."""
    lines = [f"recording {recording.path}: {recording.duration:.1f} s"]
    if recording.signal is not None:
        signal = recording.signal
        lines.append(f"EMG: {len(signal.channel_names)} channels at {signal.sample_rate:g} Hz "
                     f"in {signal.unit}: {', '.join(signal.channel_names)}")
    else:
        lines.append("EMG: none")
    if recording.markers is not None:
        markers = recording.markers
        lines.append(f"markers: {len(markers.marker_names)} at {markers.frame_rate:g} Hz, "
                     f"subject {markers.subject!r}")
    else:
        lines.append("markers: none")
    lines += recording.notes
    if model_names is not None and recording.markers is not None:
        match = match_markers(recording.markers.marker_names, model_names)
        lines.append(f"model {model_path}: {len(match.matched)} of {len(model_names)} model "
                     f"markers in the recording"
                     + (f"; missing (treated as occluded): {', '.join(match.missing)}"
                        if match.missing else "")
                     + (f"; not in the model (ignored): {', '.join(match.unknown)}"
                        if match.unknown else ""))
        lines += suggestion_lines(match.suggested)
    return lines
