"""biosig_ros_panel: the operator panel in a window of its own (no rqt needed).

    biosig_ros_panel [--namespace /subject1] [--refresh-rate 30] [--window 10]
                     [--screenshot FILE --screenshot-after S] [--quit-after S]

The same widget is the rqt plugin "biosig_ros panel" (biosig_ros/nodes/panel_plugin.py).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

import rclpy
from rclpy.utilities import remove_ros_args

from biosig_ros.panel.model import PanelModel
from biosig_ros.panel.qt import QApplication, QTimer
from biosig_ros.panel.widget import PanelWidget
from biosig_ros.ros.panel_adapter import PanelAdapter


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="biosig_ros_panel", description=__doc__.split("\n")[0])
    parser.add_argument("--namespace", default="",
                        help="namespace to show ('' = the first with biosig_ros topics)")
    parser.add_argument("--refresh-rate", type=float, default=30.0,
                        help="screen refreshes per second (default 30)")
    parser.add_argument("--window", type=float, default=10.0,
                        help="seconds of signal shown (default 10)")
    parser.add_argument("--size", default="1400x940", help="window size WxH")
    parser.add_argument("--screenshot", default="", help="save the window to this PNG ...")
    parser.add_argument("--screenshot-after", type=float, default=5.0,
                        help="... this many seconds after start, then quit")
    parser.add_argument("--quit-after", type=float, default=0.0,
                        help="quit after this many seconds (0 = never)")
    parser.add_argument("--stats-every", type=float, default=0.0,
                        help="print frames drawn and draw times this often (s; benchmarks)")
    args = parser.parse_args(argv)
    if args.refresh_rate <= 0 or args.window <= 0:
        parser.error("--refresh-rate and --window must be > 0")
    try:
        args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size: expected WxH, got {args.size!r}")
    return args


def _print_stats(widget: PanelWidget) -> None:
    times = sorted(widget.draw_seconds)
    median = times[len(times) // 2] * 1e3 if times else 0.0
    print(f"stats: ticks {widget.frames} draws {widget.draws} draw_ms_p50 {median:.2f}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    args = _arguments(remove_ros_args(argv)[1:])
    if not (os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY")
            or os.environ.get("WAYLAND_DISPLAY")):
        # Qt would abort with several lines about platform plugins.
        print("biosig_ros_panel: no display (DISPLAY is not set): run it on a desktop, or "
              "with QT_QPA_PLATFORM=offscreen for --screenshot", file=sys.stderr)
        return 2
    rclpy.init(args=argv)
    app = QApplication.instance() or QApplication(argv[:1])
    adapter = PanelAdapter(PanelModel(args.window, args.refresh_rate))
    widget = PanelWidget(adapter, args.refresh_rate)
    if args.namespace:
        widget.set_namespace(args.namespace)
    widget.resize(args.width, args.height)
    widget.show()

    def save_and_quit() -> None:
        widget.grab().save(args.screenshot)
        print(f"biosig_ros_panel: saved {args.screenshot} ({widget.fps:.1f} frames/s)",
              flush=True)
        app.quit()

    if args.screenshot:
        QTimer.singleShot(int(args.screenshot_after * 1000), save_and_quit)
    if args.stats_every > 0:
        stats = QTimer()
        stats.timeout.connect(lambda: _print_stats(widget))
        stats.start(int(args.stats_every * 1000))
    if args.quit_after > 0:
        QTimer.singleShot(int(args.quit_after * 1000), app.quit)
    # Ctrl-C: Qt's loop holds the interpreter; a periodic no-op lets Python see the signal.
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    print(f"biosig_ros_panel: ready ({app.platformName()} display)", flush=True)
    status = app.exec_()
    widget.close_panel()
    adapter.close()
    if rclpy.ok():
        rclpy.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
