"""`bio_check`: is this recording ready for this model? Check it before a live session.

    bio_check RECORDING MODEL [--seconds 2] [--params REPLAY.yaml] [--emg-pattern RE]
              [--subject NAME] [--marker-unit mm|cm|m] [--keep-flat-channels]

Prints what the replay would pick (EMG channels by label pattern, flat ones skipped, subject,
marker names and the name map it suggests: the same lines as the replay's at start), rates
and units, the occluded fraction per marker, and the IK residual per model marker over the first
seconds (biosig_ros.processing.ik_solver), then advice: model markers missing (with the closest
names the recording has), markers whose residual stands out, pairs that look swapped (IK is run
again with the two names exchanged), positions whose scale does not fit the model (units).
Exit status 0 when it ran (whatever the advice), 2 when the files cannot be used.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import warnings

import numpy as np
import yaml

from biosig_ros.errors import ConfigError
from biosig_ros.io.labels import biomod_marker_names
from biosig_ros.io.recording import RecordingSettings, load_recording
from biosig_ros.io.summary import match_markers, summary_lines
from biosig_ros.paths import resolve_data_path
from biosig_ros.signals import MarkerFrame

EXIT_ERROR = 2
# The replay's parameters that bio_check takes as options: its messages name the option.
OPTIONS = {"subject": "--subject", "emg_channel_pattern": "--emg-pattern",
           "marker_unit": "--marker-unit", "keep_flat_channels": "--keep-flat-channels"}
OUTLIER_MM = 20.0       # a marker's mean residual above this and ...
OUTLIER_FACTOR = 3.0    # ... this many times the median marker's stands out
SWAP_GAIN = 0.5         # a swap explains the pair when their residual falls below this share


def as_options(text: str) -> str:
    """A replay message with the parameters bio_check takes as options named as options."""
    for parameter, option in OPTIONS.items():
        text = text.replace(f"parameter '{parameter}'", f"option {option}")
    return text


def recording_settings(args) -> RecordingSettings:
    """RecordingSettings from a replay parameter file (--params) and the options."""
    values = {"file": args.recording, "model_path": args.model}
    if args.params:
        with open(args.params, encoding="utf-8") as file:
            document = yaml.safe_load(file) or {}
        for section in document.values():
            values.update((section or {}).get("ros__parameters", {}))
        values.update(file=args.recording, model_path=args.model)
    for option, name in (("emg_pattern", "emg_channel_pattern"), ("subject", "subject"),
                         ("marker_unit", "marker_unit"),
                         ("keep_flat_channels", "keep_flat_channels")):
        if getattr(args, option, None) is not None:
            values[name] = getattr(args, option)
    known = {f.name for f in dataclasses.fields(RecordingSettings)}
    return RecordingSettings(**{k: v for k, v in values.items() if k in known})


def emg_lines(signal) -> list[str]:
    if signal is None:
        return ["  none"]
    rms = np.sqrt(np.nanmean(signal.data ** 2, axis=0))
    flat = np.nanstd(signal.data, axis=0) == 0
    return [f"  {name:24s} RMS {value * 1e3:8.4f} m{signal.unit}{'  FLAT (no signal)' if f else ''}"
            for name, value, f in zip(signal.channel_names, rms, flat)]


def ik_residuals(model, names, positions, rate) -> np.ndarray:
    """Mean residual (metres) per model marker, Kalman IK over the frames given."""
    from biosig_ros.processing.ik_solver import IkSettings, IkSolver

    solver = IkSolver(IkSettings(model_path=str(model.path),
                                 min_visible_markers=min(6, model.nb_markers)), model)
    rows = []
    for index, frame in enumerate(positions):
        result = solver.step(MarkerFrame(frame.copy(), list(names), index, index / rate, rate))
        if result is not None:
            rows.append(result.residuals)
    if not rows:
        return np.full(model.nb_markers, np.nan)
    with warnings.catch_warnings():  # a marker never seen: NaN, said in the report
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.array(rows), axis=0)


def find_swaps(model, names, positions, rate, residuals, suspects) -> list[tuple[str, str]]:
    """Pairs of suspect markers whose names, exchanged, explain their residuals."""
    model_names = list(model.marker_names)
    found, used = [], set()
    trials = []
    for a, b in itertools.combinations(suspects, 2):
        swapped = [b if n == a else a if n == b else n for n in names]
        after = ik_residuals(model, swapped, positions, rate)
        pair = [model_names.index(a), model_names.index(b)]
        trials.append((np.nanmean(after[pair]) / np.nanmean(residuals[pair]), a, b))
    for gain, a, b in sorted(trials):
        if gain < SWAP_GAIN and a not in used and b not in used:
            found.append((a, b))
            used.update((a, b))
    return found


def scale_advice(model, positions) -> str:
    """A sentence when the markers' spread does not fit the model's (wrong unit)."""
    frame = positions[np.argmax(np.isfinite(positions).all(axis=2).sum(axis=1))]
    seen = frame[np.isfinite(frame).all(axis=1)]
    reference = model.markers(np.clip(np.zeros(model.nb_q), model.q_min, model.q_max))
    if len(seen) < 2:
        return ""
    spread = np.median(np.linalg.norm(seen - seen.mean(axis=0), axis=1))
    expected = np.median(np.linalg.norm(reference - reference.mean(axis=0), axis=1))
    ratio = spread / expected
    if ratio > 30:
        return (f"marker positions are {ratio:.0f}x larger than the model: they are probably in "
                "millimetres while read as metres (set marker_unit: mm for a .bio)")
    if ratio < 1 / 30:
        return (f"marker positions are {1 / ratio:.0f}x smaller than the model: check the "
                "unit (marker_unit; the model is in metres)")
    return ""


def check(settings: RecordingSettings, seconds: float, out=print) -> list[str]:
    """Print the report; returns the advice lines."""
    from biosig_ros.processing import ik_model

    printed = out
    out = lambda line: printed(as_options(line))  # noqa: E731 - one translation for all lines
    recording = load_recording(settings)
    # Without biorbd (the core installed without its "ik" extra) all but the residuals.
    model = ik_model.load_model(settings.model_path) if ik_model.biorbd is not None else None
    model_names = (list(model.marker_names) if model is not None
                   else biomod_marker_names(resolve_data_path(settings.model_path)))
    for line in summary_lines(recording, model_names, settings.model_path):
        out(line)
    advice = []
    out("EMG channels (whole file):")
    for line in emg_lines(recording.signal):
        out(line)
    if recording.signal is None:
        advice.append("no EMG channel found: set emg_channel_pattern or channel_names")
    if recording.markers is None:
        advice.append("no markers in the recording: IK has nothing to track")
    else:
        advice += check_markers(recording.markers, model, model_names, seconds, out)
    if advice:
        out("advice:")
    elif model is None:
        out("advice: none from the checks that ran; IK residuals, swapped markers and units "
            "were not checked (biorbd is not installed: pip install 'biosig-ros-core[ik]')")
    else:
        out("advice: none, the recording fits the model")
    for line in advice:
        out(f"  - {line}")
    return advice


def check_markers(markers, model, model_names: list[str], seconds: float, out) -> list[str]:
    """Per-marker table (occlusion, IK residual); returns the advice on markers."""
    advice = []
    match = match_markers(markers.marker_names, model_names)
    renamed = {model_name: incoming for incoming, model_name in match.suggested.mapping.items()}
    for name in match.missing:
        close = ([renamed[name]] if name in renamed
                 else match.suggested.ambiguous.get(name, []))
        advice.append(f"model marker {name} is not in the recording"
                      + (f" (the recording has {' or '.join(close)}: rename it with IK's "
                         f"marker_name_map" + (f" {close[0]}={name})" if len(close) == 1 else ")")
                         if close else ""))
    frames = markers.positions[:max(1, int(round(seconds * markers.frame_rate)))]
    unit, residuals, suspects = "", {}, []
    if model is None:
        out("IK residuals: skipped, biorbd is not installed "
            "(pip install 'biosig-ros-core[ik]')")
    else:
        unit = scale_advice(model, markers.positions)
        values = ik_residuals(model, markers.marker_names, frames, markers.frame_rate)
        residuals = dict(zip(model_names, values * 1000))
        finite = values[np.isfinite(values)] * 1000
        limit = max(OUTLIER_MM, OUTLIER_FACTOR * np.median(finite)) if finite.size else np.inf
        suspects = [n for n, value in residuals.items() if value > limit]
    if unit:
        advice.append(unit)
    hidden = np.isnan(markers.positions).any(axis=2).mean(axis=0)
    out(f"markers: occluded (whole file) and IK residual (mean over the first {len(frames)} "
        "frames)")
    for name, fraction in zip(markers.marker_names, hidden):
        value = residuals.get(name)
        text = ("not in the model" if name not in model_names else "" if value is None
                else "never seen" if np.isnan(value)
                else f"{value:6.1f} mm" + ("  <- stands out" if name in suspects else ""))
        out(f"  {name:16s} {fraction * 100:5.1f} % occluded   {text}")
        if fraction > 0.2:
            advice.append(f"{name} is occluded in {fraction * 100:.0f} % of the frames")
    for name in match.missing:
        out(f"  {name:16s} missing from the recording")
    if unit or len(suspects) < 2:  # at the wrong scale, residuals say nothing of one marker
        swaps = []
    else:
        swaps = find_swaps(model, markers.marker_names, frames, markers.frame_rate,
                           np.array([residuals[n] for n in model_names]) / 1000, suspects)
    for a, b in swaps:
        advice.append(f"{a} and {b} look swapped: with the two names exchanged their residual "
                      "drops (fix the labels, or exchange them in marker_names / "
                      "marker_name_map)")
    for name in suspects if not unit else []:
        if not any(name in pair for pair in swaps):
            advice.append(f"{name}: residual far above the others (mislabelled or moved "
                          "marker, or a model that does not fit the subject there)")
    return advice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bio_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", help=".bio, .c3d or .mcap recording")
    parser.add_argument("model", help="biorbd .bioMod model")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="IK residuals over this many first seconds (default 2)")
    parser.add_argument("--params", help="a replay parameter file (e.g. config/replay_abd.yaml)"
                                         " for a .bio's names, rates and units")
    parser.add_argument("--emg-pattern", help="regular expression picking EMG channels")
    parser.add_argument("--subject", help="subject to check among several in the labels")
    parser.add_argument("--marker-unit", help=".bio marker unit: mm, cm or m")
    parser.add_argument("--keep-flat-channels", action="store_true", default=None,
                        help="keep EMG channels that are flat over the whole file (skipped "
                             "by default, as the replay does)")
    args = parser.parse_args(argv)
    try:
        check(recording_settings(args), args.seconds)
    except ConfigError as error:
        print(f"bio_check: {as_options(str(error))}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
