"""The assist node's safety state machine and input watchdog.

States: DISABLED (command ramps to and stays at 0; the start state), ENABLED (the command
follows the law within the limits), FAULT (latched: the command ramps to 0; only a fresh enable
request leaves it, and only when the inputs are healthy at that moment), STOPPED (latched by a
stop request: the command ramps to 0; enable requests are refused, only reset leaves it, to
DISABLED). A problem seen while DISABLED latches nothing: there is nothing to stop, and
enabling checks the inputs anyway.
"""
from __future__ import annotations

DISABLED = "disabled"
ENABLED = "enabled"
FAULT = "fault"
STOPPED = "stopped"


class SafetyState:
    def __init__(self):
        self.state = DISABLED
        self.reason = ""        # why FAULT was latched
        self.faults = 0

    @property
    def active(self) -> bool:
        return self.state == ENABLED

    def enable(self, problem: str) -> tuple[bool, str]:
        """An enable request; problem is "" when the inputs are healthy now, else why not."""
        if self.state == STOPPED:
            return False, f"not enabled: {self.reason}: call ~/reset first"
        if problem:
            return False, f"not enabled: {problem}"
        cleared = f" (cleared fault: {self.reason})" if self.state == FAULT else ""
        self.state, self.reason = ENABLED, ""
        return True, "enabled" + cleared

    def disable(self) -> tuple[bool, str]:
        if self.state == STOPPED:
            return True, f"{self.reason}: stays stopped until ~/reset"
        cleared = f" (cleared fault: {self.reason})" if self.state == FAULT else ""
        self.state, self.reason = DISABLED, ""
        return True, "disabled" + cleared

    def stop(self, reason: str = "stopped by ~/stop") -> tuple[bool, str]:
        """Latch STOPPED from any state (a fault's reason gives way to the stop's)."""
        if self.state != STOPPED:
            self.state, self.reason = STOPPED, reason
        return True, f"{self.reason}: command ramps to 0; only ~/reset clears it"

    def reset(self) -> tuple[bool, str]:
        """Back to DISABLED from any state (never to ENABLED: that takes an enable request)."""
        cleared = f" (cleared: {self.reason})" if self.reason else ""
        self.state, self.reason = DISABLED, ""
        return True, "reset: disabled" + cleared

    def fault(self, reason: str) -> bool:
        """Report a problem; True when it latched a new fault (the caller logs it once)."""
        if self.state == ENABLED:
            self.state, self.reason = FAULT, reason
            self.faults += 1
            return True
        return False


class Watchdog:
    """Time of the last message of each input, against its timeout."""

    def __init__(self, timeouts: dict[str, float]):
        self.timeouts = dict(timeouts)
        self.last: dict[str, float | None] = {name: None for name in timeouts}

    def feed(self, name: str, now: float) -> None:
        self.last[name] = now

    def age(self, name: str, now: float) -> float | None:
        last = self.last[name]
        return None if last is None else now - last

    def stale(self, now: float) -> str:
        """"" when every input arrived within its timeout, else the first one that did not."""
        for name, timeout in self.timeouts.items():
            age = self.age(name, now)
            if age is None:
                return f"no {name} received yet"
            if age > timeout:
                return (f"stale {name}: none for {age * 1000:.0f} ms "
                        f"(timeout {timeout * 1000:.0f} ms)")
        return ""
