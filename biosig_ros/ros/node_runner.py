"""Entry-point helper: start a node, spin it, stop cleanly on Ctrl-C or shutdown.

A ConfigError raised while the node is built (bad parameter, missing file) is printed as one
clear line and the process exits with status 2, without a traceback.
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import tempfile
import threading
from typing import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from biosig_ros.errors import ConfigError
from biosig_ros.ros.executors import make_executor
from biosig_ros.ros.parameters import undeclared_overrides
from biosig_ros.ros.process_priority import prompt_thread_switches

EXIT_CONFIG_ERROR = 2
_STOP_CHECK_S = 0.2  # longest wait between two looks at the stop request (when idle)


def run_node(make_node: Callable[[], Node], name: str, events_by_default: bool = True) -> int:
    """Build the node with make_node() and spin it until shutdown; returns the exit status.

    The node spins on one thread (ros/executors.py: the EventsExecutor where rclpy has it and
    events_by_default, else the SingleThreadedExecutor): rclpy's MultiThreadedExecutor took
    several times the CPU per message here and lost messages at 100-400 messages/s. Blocking
    I/O runs in the nodes' own threads; a service handler that waits is an async callback
    awaiting an rclpy Future.
    Nodes may define close() to stop their own threads; it is called before destruction.
    """
    # Our own handling of SIGINT/SIGTERM: the node's close() must run while the context is
    # still valid (it logs, stops device threads, closes recordings), then rclpy shuts down.
    # While the node is built, a signal interrupts (KeyboardInterrupt); once it spins, a signal
    # only asks the loop to end after the current callback: an exception raised at an arbitrary
    # point of rclpy's C++ (converting a message) came out as a RuntimeError and a traceback.
    try:
        _init_quietly()
    except RCLError as error:  # e.g. a malformed `-p name:=value` or --params-file
        detail = " ".join(str(error).split()).replace("failed to initialize rcl: ", "")
        print(f"{name}: configuration error: {detail.split(', at ')[0]}", file=sys.stderr,
              flush=True)
        return EXIT_CONFIG_ERROR
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    prompt_thread_switches()
    stop = threading.Event()
    node = None
    status = 0
    try:
        # Chosen first: a wrong BIOSIG_ROS_EXECUTOR stops the process before the node is built.
        executor, kind = make_executor(events_by_default)
        node = make_node()
        report_undeclared_parameters(node)
        # A full garbage collection walks every object of rclpy, numpy, scipy (and biorbd):
        # tens of ms, a stall on the data path. Start-up objects live as long as the process:
        # move them out of the collector's reach.
        gc.collect()
        gc.freeze()
        node.get_logger().debug(f"spinning on the {kind} executor")
        executor.add_node(node)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=_STOP_CHECK_S)
    except ConfigError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr, flush=True)
        status = EXIT_CONFIG_ERROR
        if node is None:
            # Refused while being built: nothing ran, nothing to close. Tearing the half-built
            # node and the DDS participant down raced Fast DDS' own threads and, rarely, ended
            # in a SIGSEGV instead of this status (seen in suite runs): leave at once.
            sys.stdout.flush()
            os._exit(status)
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


def _init_quietly() -> None:
    """rclpy.init; rcl's own log lines about a bad argument are held back when it fails (the
    caller prints one line instead) and passed on otherwise."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
        except RCLError:
            failed = True
            raise
        else:
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:
                held.seek(0)
                os.write(2, held.read())


def report_undeclared_parameters(node: Node) -> None:
    """One warning per parameter-file or command-line key the node does not declare: a typo
    or a file meant for another node would otherwise be ignored silently."""
    for key in undeclared_overrides(node):
        node.get_logger().warning(
            f"parameter '{key}' given to node '{node.get_fully_qualified_name()}' is not a "
            "parameter of this node: ignored")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main_for(make_node: Callable[[], Node], name: str, events_by_default: bool = True) -> None:
    """sys.exit(run_node(...)): the body of every node's main().

    A configuration error leaves through os._exit(2) once the output is flushed: nothing is
    left to clean up (rclpy is shut down), and the interpreter's teardown (objects of rclpy, the
    DDS layer and numba's LLVM freed in the garbage collector's order) once turned that exit
    into a SIGSEGV (exit status -11) right after the one-line error."""
    status = run_node(make_node, name, events_by_default)
    if status == EXIT_CONFIG_ERROR:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
