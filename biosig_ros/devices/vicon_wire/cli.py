"""vicon_wire_sim: a Vicon DataStream server (Vicon's wire protocol) playing a recording, for
Vicon's own client library and sample programs.

Examples:
  vicon_wire_sim data/abd.bio --port 8010 --copy object2:500,0,0
  vicon_wire_sim trial.c3d --subject Subj01 --subject Subj02 --occlude LASI:20:35
SIGUSR1 stalls the stream for --stall-seconds, SIGUSR2 drops every connection.
"""
from __future__ import annotations

import argparse
import signal
import sys

from biosig_ros.devices.simulator_cli import add_run_arguments, serve_until_stopped
from biosig_ros.devices.vicon_wire.recording_scene import scene_from_file
from biosig_ros.devices.vicon_wire.server import DEFAULT_PORT, ViconWireServer
from biosig_ros.errors import ConfigError
from biosig_ros.io.recording import RecordingSettings


def _copy(text: str) -> tuple[str, tuple[float, float, float]]:
    name, sep, offset = text.partition(":")
    try:
        values = tuple(float(v) for v in offset.split(","))
    except ValueError:
        values = ()
    if not sep or not name or len(values) != 3:
        raise argparse.ArgumentTypeError(f"--copy expects NAME:DX,DY,DZ (mm), got {text!r}")
    return name, values


def _occlusion(text: str) -> tuple[str, int, int]:
    try:
        name, first, last = text.rsplit(":", 2)
        return name, int(first), int(last)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--occlude expects MARKER:FIRST:LAST (recording frames), got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vicon_wire_sim", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", nargs="?", default="data/abd.bio",
                        help="recording to play: .c3d, .bio or .mcap (default data/abd.bio)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port (default {DEFAULT_PORT}, Vicon's; 0 = a free port)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help=".bio: frame rate of the markers in Hz (.c3d/.mcap carry theirs)")
    parser.add_argument("--analog-rate", type=float, default=2000.0,
                        help=".bio: sample rate of the analog signal in Hz")
    parser.add_argument("--markers-key", default="markers", help=".bio: key of the markers")
    parser.add_argument("--analog-key", default="emg", help=".bio: key of the analog signal")
    parser.add_argument("--marker-unit", default="mm", help=".bio: unit of the markers")
    parser.add_argument("--marker-names", default="", metavar="A,B,...",
                        help=".bio: marker names in file order, comma-separated (default: "
                        "marker_1..n)")
    parser.add_argument("--subject", action="append", default=[], metavar="NAME",
                        help="subject to stream: a .c3d label prefix (repeatable), or the "
                        "name of a .bio's subject (default: the file's)")
    parser.add_argument("--copy", type=_copy, action="append", default=[],
                        metavar="NAME:DX,DY,DZ", help="add subject NAME: the first subject "
                        "shifted by DX,DY,DZ millimetres (repeatable)")
    parser.add_argument("--occlude", type=_occlusion, action="append", default=[],
                        metavar="MARKER:FIRST:LAST", help="hide a marker of the first subject "
                        "over recording frames FIRST..LAST (repeatable)")
    parser.add_argument("--no-analog", action="store_true", help="stream markers only")
    parser.add_argument("--device-name", default="EMG", help="name of the analog device")
    parser.add_argument("--prefix-marker-names", action="store_true",
                        help="name markers SUBJECT:MARKER in the subject info")
    parser.add_argument("--first-frame", type=int, default=1, help="number of the first frame")
    parser.add_argument("--epoch", type=float, default=None,
                        help="Unix time of the first frame (a restarted simulator given the "
                        "same epoch continues the frame count; default: now)")
    add_run_arguments(parser, "send nothing for SECONDS, AT s after start")
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = RecordingSettings(frame_rate=args.rate, sample_rate=args.analog_rate,
                                 markers_key=args.markers_key, signal_key=args.analog_key,
                                 marker_unit=args.marker_unit,
                                 marker_names=[n for n in args.marker_names.split(",") if n])
    try:
        scene = scene_from_file(args.recording, subjects=args.subject, copies=args.copy,
                                occlusions=args.occlude, analog=not args.no_analog,
                                device_name=args.device_name,
                                prefix_marker_names=args.prefix_marker_names, settings=settings)
        server = ViconWireServer(scene, port=args.port, host=args.host,
                                 first_frame=args.first_frame, epoch=args.epoch).start()
    except ConfigError as error:
        print(f"vicon_wire_sim: configuration error: {error}", file=sys.stderr, flush=True)
        return 2
    signal.signal(signal.SIGUSR2, lambda *_: server.drop_connections())
    subjects = ", ".join(f"{s.name} ({len(s.marker_names)} markers)" for s in scene.subjects)
    devices = ", ".join(f"{d.name} ({len(d.channel_names)} channels, {d.samples_per_frame} "
                        f"samples/frame)" for d in scene.devices) or "none"
    banner = (f"vicon_wire_sim: listening on {server.address}; {scene.frame_rate:g} Hz, "
              f"{scene.frame_count} frames looped; subjects: {subjects}; devices: {devices}; "
              f"epoch {server.epoch:.3f}")
    serve_until_stopped("vicon_wire_sim", server, banner, args, 0.1)
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
