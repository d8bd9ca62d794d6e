"""`bio_convert`: a biosiglive `.bio` recording -> a `.c3d` file (markers + analog channels),
or, with `-o OUT.mcap`, a bridge recording -> MCAP with the package's topics (bio_to_mcap).

    bio_convert RECORDING.bio [-o OUT.c3d | -o OUT.mcap] [--marker-rate HZ] [--analog-rate HZ]
                [--model MODEL.bioMod | --marker-names A,B,...] [--repair]

Reads the file safely (no code from it runs; a torn last record from a crash is skipped) and
writes markers as C3D points (occluded markers as NaN) and EMG as C3D analogs, aligned in time
when the recording has per-sample times. Understands the bridge's recordings, biosiglive
StreamData recordings (raw_device_data, marker_set_data) and plain dicts like the example
data/abd.bio ({"emg": channels x samples, "markers": 3 x markers x frames}). --repair also cuts
a torn tail off the .bio itself, so that biosiglive.load can read it again.

Marker names: the recording's own (the bridge records them); a file without names (abd.bio,
StreamData) takes --marker-names, or the names of --model in the model's order when the counts
agree (as the replay does), so that the .c3d matches the model; else M0, M1, ... with a note.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError, missing_extra
from biosig_ros.io.bio_file import BioWriter, bio_path, merge_records, read_bio_records

EXIT_ERROR = 2


@dataclass
class Stream:
    """One device or marker set of a recording, samples on the last axis."""

    key: str
    data: np.ndarray
    rate: float | None
    names: list[str]
    unit: str
    start: float | None   # POSIX time of the first sample, when recorded
    unnamed: bool = False  # names made up here (the recording had none)


def _per_source(value) -> list[np.ndarray]:
    """A merged .bio value -> one array per source (records concatenated on the last axis)."""
    if isinstance(value, np.ndarray):
        return [value]
    records = [r if isinstance(r, list) else [r] for r in value]
    records = [r for r in records if r]
    if not records:
        return []
    n_sources = max(len(r) for r in records)
    sources = []
    for j in range(n_sources):
        parts = [np.asarray(r[j], dtype=float) for r in records if len(r) > j and np.size(r[j])]
        if parts:
            sources.append(np.concatenate(parts, axis=-1))
    return sources


def _rate_from_times(times: np.ndarray) -> float | None:
    if times is None or times.size < 2:
        return None
    steps = np.diff(times)
    steps = steps[steps > 0]
    return float(round(1.0 / np.median(steps), 3)) if steps.size else None


def name_markers(streams: list[Stream], names: list[str], source: str) -> list[str]:
    """Name the marker streams recorded without names; returns notes on what was done."""
    notes = []
    for stream in streams:
        if stream.key != "marker_set_data" or not stream.unnamed:
            continue
        count = stream.data.shape[1]
        if names and len(names) == count:
            stream.names, stream.unnamed = list(names), False
            notes.append(f"markers: the recording has no names: named from {source} in its "
                         "order (check the match with bio_check)")
        elif names:
            notes.append(f"markers: {source} gives {len(names)} names for {count} markers in "
                         f"the recording: named M0..M{count - 1}")
        else:
            notes.append(f"markers: the recording has no names: named M0..M{count - 1} (give "
                         "--model or --marker-names so that the .c3d matches the model)")
    return notes


def streams_of(data: dict, marker_rate: float | None, analog_rate: float | None) -> list[Stream]:
    """The marker and signal streams of a loaded recording."""
    streams: list[Stream] = []
    infos = data.get("sources", [{}])[-1] if isinstance(data.get("sources"), list) else {}
    ours = "sources" in data
    keys = ["raw_device_data", "marker_set_data"] + (["proc_device_data"] if ours else [])
    for key in keys:
        if key not in data:
            continue
        arrays = _per_source(data[key])
        times = _per_source(data.get(f"{key}_time", [])) if f"{key}_time" in data else []
        for j, array in enumerate(arrays):
            source_infos = infos.get(key) or []
            info = source_infos[j] if j < len(source_infos) else {}
            t = times[j] if j < len(times) else None
            is_marker = key == "marker_set_data"
            rate = (info.get("rate") or _rate_from_times(t)
                    or (marker_rate if is_marker else analog_rate))
            count = array.shape[1] if is_marker else array.shape[0]
            names = list(info.get("names") or [])
            unnamed = len(names) != count
            if unnamed:
                names = [f"{'M' if is_marker else key.split('_')[0]}{j}_{i}" for i in range(count)]
            unit = info.get("unit") or ("mm" if is_marker else "V")
            streams.append(Stream(key, array, rate, names, unit,
                                  float(t[0]) if t is not None and t.size else None, unnamed))
    if "markers" in data and isinstance(data["markers"], np.ndarray):
        m = data["markers"]
        streams.append(Stream("marker_set_data", m, marker_rate,
                              [f"M{i}" for i in range(m.shape[1])], "mm", None, True))
    if "emg" in data and isinstance(data["emg"], np.ndarray):
        e = np.atleast_2d(data["emg"])
        streams.append(Stream("raw_device_data", e, analog_rate,
                              [f"emg{i}" for i in range(e.shape[0])], "V", None))
    return streams


def build_c3d(streams: list[Stream], marker_rate: float | None, analog_rate: float | None):
    """An ezc3d.c3d with the marker sets as points and the signals as analogs."""
    import ezc3d

    markers = [s for s in streams if s.key == "marker_set_data"]
    signals = [s for s in streams if s.key != "marker_set_data"]
    notes = []
    point_rate = next((s.rate for s in markers if s.rate), None) or marker_rate
    signal_rate = next((s.rate for s in signals if s.rate), None) or analog_rate
    if markers and not point_rate:
        raise ConfigError("marker rate unknown: pass --marker-rate")
    if signals and not signal_rate:
        raise ConfigError("analog rate unknown: pass --analog-rate")
    if not markers and not signals:
        raise ConfigError("the recording holds no markers and no signals to convert")
    if not markers:
        point_rate = signal_rate
    ratio = 1
    if signals:
        ratio = int(round(signal_rate / point_rate))
        if ratio < 1 or abs(ratio * point_rate - signal_rate) > 1e-6 * signal_rate:
            notes.append(f"analog rate {signal_rate} Hz is not a multiple of the marker rate "
                         f"{point_rate} Hz: analogs left out")
            signals = []
    kept_signals = [s for s in signals if s.rate in (None, signal_rate)]
    notes += [f"{s.key} at {s.rate} Hz left out (analogs must share one rate)"
              for s in signals if s not in kept_signals]

    n_frames = max([s.data.shape[-1] for s in markers] or
                   [-(-s.data.shape[-1] // ratio) for s in kept_signals])
    starts = [s.start for s in markers + kept_signals if s.start is not None]
    t0 = min((s.start for s in markers if s.start is not None), default=min(starts, default=None))

    points = np.full((4, sum(s.data.shape[1] for s in markers), n_frames), np.nan)
    points[3] = 1.0
    labels, column = [], 0
    for s in markers:
        data = s.data.copy()
        data[:, np.all(data == 0, axis=0)] = np.nan  # Vicon's occluded markers come as zeros
        n = min(n_frames, data.shape[-1])
        points[:3, column:column + data.shape[1], :n] = data[..., :n]
        labels += s.names if len(markers) == 1 else [
            f"set{markers.index(s)}:{name}" for name in s.names]
        column += data.shape[1]

    n_analog = n_frames * ratio
    analogs = np.full((1, sum(s.data.shape[0] for s in kept_signals), n_analog), np.nan)
    analog_labels, analog_units, row = [], [], 0
    for s in kept_signals:
        offset = 0 if (s.start is None or t0 is None) else int(round((s.start - t0) * signal_rate))
        src_from, dst_from = max(0, -offset), max(0, offset)
        n = max(0, min(s.data.shape[-1] - src_from, n_analog - dst_from))
        rows = slice(row, row + s.data.shape[0])
        analogs[0, rows, dst_from:dst_from + n] = s.data[:, src_from:src_from + n]
        analog_labels += s.names
        analog_units += [s.unit] * s.data.shape[0]
        row += s.data.shape[0]

    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [float(point_rate)]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = labels
    c3d["parameters"]["POINT"]["UNITS"]["value"] = [markers[0].unit if markers else "mm"]
    c3d["data"]["points"] = points
    if kept_signals:
        c3d["parameters"]["ANALOG"]["RATE"]["value"] = [float(signal_rate)]
        c3d["parameters"]["ANALOG"]["LABELS"]["value"] = analog_labels
        c3d["parameters"]["ANALOG"]["UNITS"]["value"] = analog_units
        c3d["data"]["analogs"] = analogs
    return c3d, notes


def convert(source: str | Path, target: str | Path | None = None, marker_rate: float | None = 100.0,
            analog_rate: float | None = 2000.0, model: str | Path | None = None,
            marker_names: list[str] | None = None) -> tuple[Path, list[str]]:
    """Convert a .bio file to .c3d (or .mcap); returns the output path and notes on what was
    left out. Markers recorded without names take marker_names, or model's (.bioMod)."""
    source = bio_path(source)
    content = read_bio_records(source)
    notes = [f"{source}: torn last record skipped ({content.valid_bytes} readable bytes)"] \
        if content.torn_tail else []
    target = Path(target) if target else source.with_suffix(".c3d")
    if target.suffix.lower() == ".mcap":
        try:
            from biosig_ros.bridge.bio_to_mcap import bio_to_mcap
        except ImportError as error:
            raise missing_extra(error, "writing .mcap", "mcap") from None

        count = bio_to_mcap(content.records, target)
        return target, notes + [f"{count} messages"]
    data = merge_records(content.records)
    streams = streams_of(data, marker_rate, analog_rate)
    if marker_names:
        notes += name_markers(streams, list(marker_names), "--marker-names")
    elif model:
        from biosig_ros.io.labels import biomod_marker_names

        notes += name_markers(streams, biomod_marker_names(model), f"the model {model}")
    else:
        notes += name_markers(streams, [], "")
    c3d, more = build_c3d(streams, marker_rate, analog_rate)
    if target.suffix.lower() != ".c3d":
        raise ConfigError(f"{target}: the output must end in .c3d or .mcap")
    target.parent.mkdir(parents=True, exist_ok=True)
    c3d.write(str(target))
    return target, notes + more


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bio_convert", description=__doc__.splitlines()[0])
    parser.add_argument("recording", help="the .bio file")
    parser.add_argument("-o", "--output",
                        help="the .c3d or .mcap to write (default: a .c3d beside the input)")
    parser.add_argument("--marker-rate", type=float, default=100.0,
                        help="Hz, when the recording does not say (default 100)")
    parser.add_argument("--analog-rate", type=float, default=2000.0,
                        help="Hz, when the recording does not say (default 2000)")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--model", help="a .bioMod: markers recorded without names take the "
                                       "model's, in its order, when the counts agree")
    names.add_argument("--marker-names", help="comma-separated names of the markers, in the "
                                              "recording's order (for a file without names)")
    parser.add_argument("--repair", action="store_true",
                        help="cut a torn last record off the .bio in place first")
    args = parser.parse_args(argv)
    try:
        if args.repair:
            writer = BioWriter(args.recording)
            writer.close()
            if writer.repaired_bytes:
                print(f"{writer.path}: cut {writer.repaired_bytes} bytes of a torn last record")
        target, notes = convert(
            args.recording, args.output, args.marker_rate, args.analog_rate, args.model,
            [n.strip() for n in args.marker_names.split(",")] if args.marker_names else None)
    except ConfigError as error:
        print(f"bio_convert: {error}", file=sys.stderr)
        return EXIT_ERROR
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {target}")
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
