"""Per-joint torque limits and a rate limit (N.m/s) on the published command."""
from __future__ import annotations

import math


class TorqueLimiter:
    """Holds the last command; step() moves it towards a target within the limits.

    The target is clamped to +-torque_limits (a non-finite target counts as 0), then the command
    moves towards it by at most rate_limits x dt. dt is capped at max_dt, so that a stalled
    caller (a late timer, an executor hiccup) cannot turn into one large step. Python floats:
    a few joints cost less than numpy's per-call overhead on the way to the command.
    """

    def __init__(self, torque_limits, rate_limits, max_dt: float):
        self.torque_limits = [float(v) for v in torque_limits]
        self.rate_limits = [float(v) for v in rate_limits]
        self.max_dt = float(max_dt)
        self.command = [0.0] * len(self.torque_limits)

    def step(self, target, dt: float) -> list[float]:
        """The next command (N.m per joint) after dt seconds, towards target."""
        dt = min(max(float(dt), 0.0), self.max_dt) if math.isfinite(dt) else 0.0
        command = []
        for goal, now, limit, rate in zip(target, self.command, self.torque_limits,
                                          self.rate_limits):
            goal = min(max(goal, -limit), limit) if math.isfinite(goal) else 0.0
            reach = rate * dt
            command.append(now + min(max(goal - now, -reach), reach))
        self.command = command
        return command

    def reset(self) -> None:
        self.command = [0.0] * len(self.command)

    def at_zero(self) -> bool:
        return not any(self.command)
