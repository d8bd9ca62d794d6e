"""Entry-point helper: start a node, spin it, stop cleanly on Ctrl-C or shutdown.

A ConfigError raised while the node is built (bad parameter, missing file) is printed as one
clear line and the process exits with status 2, without a traceback.
"""
from __future__ import annotations

import gc
import signal
import sys
import threading
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from biosig_ros.errors import ConfigError

EXIT_CONFIG_ERROR = 2
_STOP_CHECK_S = 0.2  # longest wait between two looks at the stop request (when idle)


def run_node(make_node: Callable[[], Node], name: str) -> int:
    """Build the node with make_node() and spin it until shutdown; returns the exit status.

    The node spins on a SingleThreadedExecutor: rclpy's MultiThreadedExecutor took several
    times the CPU per message here and lost messages at 100-400 messages/s. Blocking I/O runs
    in the nodes' own threads; a service handler that waits uses ros.service_lane.ServiceLane.
    Nodes may define close() to stop their own threads; it is called before destruction.
    """
    # Our own handling of SIGINT/SIGTERM: the node's close() must run while the context is
    # still valid (it logs, stops device threads, closes recordings), then rclpy shuts down.
    # While the node is built, a signal interrupts (KeyboardInterrupt); once it spins, a signal
    # only asks the loop to end after the current callback: an exception raised at an arbitrary
    # point of rclpy's C++ (converting a message) came out as a RuntimeError and a traceback.
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stop = threading.Event()
    node = None
    status = 0
    try:
        node = make_node()
        # A full garbage collection walks every object of rclpy, numpy, scipy (and biorbd):
        # tens of ms, a stall on the data path. Start-up objects live as long as the process:
        # move them out of the collector's reach.
        gc.collect()
        gc.freeze()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=_STOP_CHECK_S)
    except ConfigError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr, flush=True)
        status = EXIT_CONFIG_ERROR
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return status


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main_for(make_node: Callable[[], Node], name: str) -> None:
    """sys.exit(run_node(...)): the body of every node's main()."""
    sys.exit(run_node(make_node, name))
