"""A managed (lifecycle) node around a DeviceLink: what every device node shares.

    configure  = connect and check the device (DeviceLink.open; failure leaves it unconfigured)
    activate   = stream (DeviceLink.start; a lost device is retried and resumed while active)
    deactivate = stop streaming (DeviceLink.halt), the connection stays
    cleanup    = disconnect (DeviceLink.stop); shutdown = stop and disconnect from any state

rclpy.lifecycle gives the standard services (~/change_state, ~/get_state, ...) and
~/transition_event. With the `autostart` parameter the node walks configure and activate by
itself, retrying configure every `retry_interval` s until the device answers. Publishers are
lifecycle publishers: nothing goes out unless active. Link states are logged and put on
/diagnostics from the executor thread, a loss only once it is GRACE_S old: when a whole graph
is stopped (Ctrl-C), the device (or its simulator) may close first, and a normal stop must not
log "device lost".
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from biosig_ros.devices.device_link import (CONNECTED, CONNECTING, STREAMING, DeviceError,
                                            DeviceLink, LinkStatus)
from biosig_ros.ros.diagnostics import ERROR, OK, WARN, Diagnostics, LossWindow
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.process_priority import apply_priorities
from biosig_ros.ros.qos import output_qos
from biosig_ros.settings import doc_field, realtime_priority_field

GRACE_S = 0.5          # a lost device is reported once the loss is this old (see docstring)
REPORT_PERIOD_S = 0.1  # how often link states are looked at from the executor thread
LOG_REPEAT_S = 10.0    # a repeated connection error is logged at most this often

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE


@dataclass
class DeviceNodeSettings:
    """Parameters every device node has."""

    autostart: bool = doc_field(True, "configure and activate at start (retrying configure "
                                      "every retry_interval s until the device answers); "
                                      "false: wait for lifecycle transitions")
    frame_id: str = doc_field("world", "header.frame_id of the published messages (the lab's "
                                       "fixed motion-capture frame, REP-103)")
    realtime_priority: int = realtime_priority_field()


class DeviceNode(LifecycleNode):
    """Subclasses build their publishers with self.publisher(), then call begin(); they write
    make_link() and may extend diagnostic_values() and assess()."""

    def __init__(self, name: str, settings_type: type, hardware_id: Callable[[object], str]):
        super().__init__(name)
        self.node_settings = declare_settings(self, DeviceNodeSettings)
        apply_priorities(self, self.node_settings.realtime_priority)  # before the link's threads
        self.settings = declare_settings(self, settings_type, on_change=self._on_settings)
        self.frame_id = self.node_settings.frame_id
        self.link: DeviceLink | None = None     # made at the first configure, kept after
        # A device streams in real time whatever /clock says: its rates, losses and timeouts
        # are measured on this machine's clock, even under use_sim_time.
        self.losses = LossWindow()
        self._diagnostics = Diagnostics(self, hardware_id=hardware_id(self.settings))
        self._lock = threading.Lock()
        self._latest: LinkStatus | None = None
        self._outage: tuple[float, LinkStatus] | None = None   # since when, first status
        self._reported: LinkStatus | None = None
        self._reported_outage: LinkStatus | None = None
        self._state = "unconfigured"
        self._failure = ""                      # why the last configure failed
        self._autostart = None
        self._losses_counted: dict[str, int] = {}
        # Link reports and autostart retries follow the device, in real time (a timer on the
        # node's clock would wait for /clock under use_sim_time).
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(REPORT_PERIOD_S, self._report, clock=self._steady)
        self.create_timer(1.0, self._update_diagnostics)

    # -- for subclasses --------------------------------------------------------------------
    def make_link(self) -> DeviceLink:
        """The node's link (made once: indices keep counting across cleanup and configure),
        with on_status=self.on_link_status."""
        raise NotImplementedError

    def diagnostic_values(self) -> dict:
        return {}

    def apply_settings(self, settings, changed: list[str]) -> None:
        """Runtime parameters changed (already validated): take them into use, or raise
        ConfigError to refuse. Only fields marked runtime ever get here."""

    def assess(self, status: LinkStatus) -> tuple[int, str]:
        """Diagnostic level and message while active: OK streaming (or connected, about to),
        WARN connecting for the first time, ERROR once the device was lost or refused."""
        if status.state in (STREAMING, CONNECTED):
            return OK, status.message
        if status.state == CONNECTING and status.failures == 0:
            return WARN, status.message
        return ERROR, status.message

    def count_losses(self, total: int, what: str) -> None:
        """A link's running total of lost `what`: its growth goes into the loss window."""
        new = total - self._losses_counted.get(what, 0)
        if new > 0:
            self.losses.record(new, what)
        self._losses_counted[what] = total

    def publisher(self, msg_type, topic: str):
        """A lifecycle publisher (silent unless active) with the package's output QoS."""
        return self.create_lifecycle_publisher(msg_type, topic, output_qos())

    def begin(self) -> None:
        """End of the subclass constructor: the first autostart step, then one per retry."""
        if self.node_settings.autostart:
            self._autostart = self.create_timer(self.settings.retry_interval,
                                                self._autostart_step, clock=self._steady)
            self._autostart_step()
        else:
            self._diagnostics.set(OK, "unconfigured (autostart off: waiting for configure)")

    def on_link_status(self, status: LinkStatus) -> None:
        """The link's callback (any thread): kept for the executor thread to report."""
        with self._lock:
            self._latest = status
            if status.state in (STREAMING, CONNECTED) or status.failures == 0:
                self._outage = None
            elif self._outage is None:
                self._outage = (time.monotonic(), status)

    @property
    def lifecycle_state(self) -> str:
        return self._state

    # -- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.link is None:
            self.link = self.make_link()
        try:
            description = self.link.open()
        except DeviceError as error:
            self._failure = str(error)
            self._diagnostics.set(ERROR, f"cannot connect: {error}")
            self.get_logger().error(f"configure failed: {error}",
                                    throttle_duration_sec=LOG_REPEAT_S)
            return FAILURE
        self._failure = ""
        self._state = "inactive"
        self.get_logger().info(f"configured: {description}")
        self._diagnostics.set(OK, f"inactive: {description}")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        super().on_activate(state)               # enables the lifecycle publishers
        self._state = "active"
        self._reported = None                    # the next link status is reported afresh
        self._diagnostics.set(OK, "active: starting the stream")
        self.link.start()
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.link.halt()
        super().on_deactivate(state)
        self._state = "inactive"
        self.get_logger().info("deactivated: not streaming")
        self._diagnostics.set(OK, "inactive: not streaming")
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_link()
        self._state = "unconfigured"
        self._diagnostics.set(OK, "unconfigured: disconnected")
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_link()
        self._state = "finalized"
        # Still on /diagnostics (the publisher outlives the state machine): never "streaming".
        self._diagnostics.set(WARN, "finalized: shut down, not streaming (restart the node)")
        self._update_diagnostics()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_link()
        self._state = "unconfigured"
        self._diagnostics.set(ERROR, "unconfigured after an error in a transition "
                                     "(configure it again)")
        self._update_diagnostics()
        return SUCCESS

    def close(self) -> None:
        """node_runner's stop: the shutdown transition (stop streaming, disconnect)."""
        if self._autostart is not None:
            self._autostart.cancel()
        if self._state != "finalized":
            self.trigger_shutdown()

    # -- internals -------------------------------------------------------------------------
    def _on_settings(self, settings, changed: list[str]) -> None:
        self.apply_settings(settings, changed)
        self.settings = settings

    def _close_link(self) -> None:
        if self.link is not None:
            self.link.stop()

    def _autostart_step(self) -> None:
        if self._state == "unconfigured":
            self.trigger_configure()
        if self._state == "inactive":
            self.trigger_activate()
        if self._state != "unconfigured":
            self._autostart.cancel()             # from now on, only transitions requested

    def _report(self) -> None:
        with self._lock:
            latest, outage = self._latest, self._outage
        if latest is None or self._state != "active":
            return
        if outage is not None:
            since, first = outage
            if time.monotonic() - since < GRACE_S:
                return
            if first is not self._reported_outage:     # the loss itself, then what followed
                self._reported_outage = first
                self._report_status(first)
        if latest is not self._reported:
            self._report_status(latest)

    def _report_status(self, status: LinkStatus) -> None:
        self._reported = status
        level, message = self.assess(status)
        self._diagnostics.set(level, message)
        logger = self.get_logger()
        if status.state == STREAMING:
            logger.info(status.message)
        elif level == ERROR and status.state != CONNECTING:
            text = f"{status.message} (retrying every {self.settings.retry_interval:g} s)"
            # rclpy throttles per call site: a loss is not silenced by connection retries.
            if status.message.startswith("device lost"):
                logger.error(text, throttle_duration_sec=LOG_REPEAT_S)
            else:
                logger.error(text, throttle_duration_sec=LOG_REPEAT_S)

    def _update_diagnostics(self) -> None:
        link = self.link
        status = link.status if link is not None else None
        values = dict(lifecycle=self._state, state=status.state if status else "-",
                      sessions=status.sessions if status else 0,
                      failures=status.failures if status else 0,
                      last_error=(status.last_error if status else self._failure) or "-")
        values.update(self.diagnostic_values())
        lost = self.losses.summary()[0]
        values["lost_in_window"] = lost
        self._diagnostics.update_values(**values)
        if self._state != "active" or status is None or self._reported is not status:
            return
        level, message = self.assess(status)
        if level == OK and lost:
            self._diagnostics.set(WARN, self.losses.message())
        else:
            self._diagnostics.set(level, message)
