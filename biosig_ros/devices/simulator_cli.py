"""Command-line pieces both device simulators (trigno_sim, vicon_wire_sim) share: the
--duration/--stall/--stall-seconds options and the serve-until-stopped loop."""
from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Callable, Protocol


class StallableServer(Protocol):
    def stall(self, seconds: float) -> None: ...
    def stop(self) -> None: ...


def parse_stall(text: str) -> tuple[float, float]:
    """`AT:SECONDS` -> (at, seconds): a stall SECONDS long, AT s after start. (argparse
    prefixes the error with "argument --stall: ".)"""
    try:
        at, seconds = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected AT:SECONDS, got {text!r}") from None
    if at < 0 or seconds <= 0:
        raise argparse.ArgumentTypeError(f"AT must be >= 0 and SECONDS > 0, got {text!r}")
    return at, seconds


def add_run_arguments(parser: argparse.ArgumentParser, stall_help: str) -> None:
    """--duration, --stall AT:SECONDS (repeatable) and --stall-seconds (SIGUSR1's stall)."""
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    parser.add_argument("--stall", type=parse_stall, action="append", default=[],
                        metavar="AT:SECONDS", help=stall_help)
    parser.add_argument("--stall-seconds", type=float, default=3.0,
                        help="length of the stall that SIGUSR1 causes")


def serve_until_stopped(prog: str, server: StallableServer, banner: str,
                        args: argparse.Namespace, poll_seconds: float,
                        on_tick: Callable[[], None] | None = None) -> None:
    """Print `banner`, then serve until SIGINT/SIGTERM or --duration, stalling at each --stall
    and on SIGUSR1; stop the server. Handlers go in before the banner: whoever waits for the
    banner may signal at once."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: server.stall(args.stall_seconds))
    print(banner, flush=True)
    stalls = sorted(args.stall)
    started = time.monotonic()
    while not stop.wait(poll_seconds):
        elapsed = time.monotonic() - started
        if args.duration is not None and elapsed >= args.duration:
            break
        while stalls and elapsed >= stalls[0][0]:
            print(f"{prog}: stalling {stalls[0][1]:g} s", flush=True)
            server.stall(stalls.pop(0)[1])
        if on_tick is not None:
            on_tick()
    server.stop()
    print(f"{prog}: stopped", flush=True)
