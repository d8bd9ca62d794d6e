"""Per-joint torque limits and a rate limit (N.m/s) on the published command."""
from __future__ import annotations

import numpy as np


class TorqueLimiter:
    """Holds the last command; step() moves it towards a target within the limits.

    The target is clamped to +-torque_limits (a non-finite target counts as 0), then the command
    moves towards it by at most rate_limits x dt. dt is capped at max_dt, so that a stalled
    caller (a late timer, an executor hiccup) cannot turn into one large step.
    """

    def __init__(self, torque_limits, rate_limits, max_dt: float):
        self.torque_limits = np.asarray(torque_limits, dtype=float)
        self.rate_limits = np.asarray(rate_limits, dtype=float)
        self.max_dt = float(max_dt)
        self.command = np.zeros(len(self.torque_limits))

    def step(self, target: np.ndarray, dt: float) -> np.ndarray:
        """The next command (N.m per joint) after dt seconds, towards target."""
        goal = np.where(np.isfinite(target), target, 0.0)
        goal = np.clip(goal, -self.torque_limits, self.torque_limits)
        dt = min(max(float(dt), 0.0), self.max_dt) if dt == dt else 0.0  # NaN dt: no move
        reach = self.rate_limits * dt
        self.command = self.command + np.clip(goal - self.command, -reach, reach)
        return self.command

    def at_zero(self) -> bool:
        return not self.command.any()
