"""A one-joint exoskeleton (an elbow) for running the assistance loop without hardware.

inertia x acceleration = commanded torque - damping x velocity - gravity torque, with
gravity torque = mass x g x com_distance x sin(position) (position 0 = forearm hanging down,
positive = flexion), integrated with semi-implicit Euler in substeps. The joint limits are hard
stops: the position is held at the limit and the velocity into it is removed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field

GRAVITY = 9.81


@dataclass
class ExoSimSettings:
    joint_name: str = doc_field("elbow", "name of the simulated joint (JointState.name)")
    inertia: float = doc_field(0.05, "kg.m^2 about the joint (forearm + exo link)",
                               range=(1e-6, 100.0))
    damping: float = doc_field(0.5, "N.m.s/rad viscous damping", range=(0.0, 1000.0))
    mass: float = doc_field(0.0, "kg of the link gravity acts on (0 = no gravity)",
                            range=(0.0, 100.0))
    com_distance: float = doc_field(0.15, "m from the joint to the link's centre of mass",
                                    range=(0.0, 2.0))
    position_min: float = doc_field(0.0, "rad, lower hard stop", range=(-6.3, 6.3))
    position_max: float = doc_field(2.5, "rad, upper hard stop", range=(-6.3, 6.3))
    initial_position: float = doc_field(0.5, "rad at start", range=(-6.3, 6.3))
    max_torque: float = doc_field(100.0, "N.m the simulated motor saturates at",
                                  range=(0.0, 10000.0))

    def __post_init__(self) -> None:
        for name in ("inertia", "damping", "mass", "com_distance", "position_min",
                     "position_max", "initial_position", "max_torque"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"parameter '{name}' must be finite")
        if self.inertia <= 0:
            raise ConfigError(f"parameter 'inertia' must be > 0 kg.m^2, got {self.inertia!r}")
        if not self.position_min < self.position_max:
            raise ConfigError(f"parameter 'position_min' ({self.position_min}) must be below "
                              f"'position_max' ({self.position_max})")
        if not self.position_min <= self.initial_position <= self.position_max:
            raise ConfigError(f"parameter 'initial_position' ({self.initial_position}) must lie "
                              f"within [position_min, position_max]")
        if not self.joint_name:
            raise ConfigError("parameter 'joint_name' is empty")


class OneJointExo:
    """The joint's state (rad, rad/s) and the torque applied (N.m)."""

    def __init__(self, settings: ExoSimSettings):
        self.settings = settings
        self.position = settings.initial_position
        self.velocity = 0.0
        self.torque = 0.0
        self.at_limit = False

    def gravity_torque(self) -> float:
        s = self.settings
        return s.mass * GRAVITY * s.com_distance * math.sin(self.position)

    def step(self, command: float, dt: float, substeps: int = 10) -> None:
        """Advance by dt seconds under a commanded torque (a non-finite one applies nothing,
        as a motor driver would refuse it)."""
        s = self.settings
        if not math.isfinite(command):
            command = 0.0
        self.torque = max(-s.max_torque, min(s.max_torque, command))
        h = dt / substeps
        for _ in range(substeps):
            acceleration = (self.torque - s.damping * self.velocity
                            - self.gravity_torque()) / s.inertia
            self.velocity += h * acceleration
            self.position += h * self.velocity
            self.at_limit = False
            if self.position <= s.position_min:
                self.position, self.at_limit = s.position_min, True
                self.velocity = max(self.velocity, 0.0)
            elif self.position >= s.position_max:
                self.position, self.at_limit = s.position_max, True
                self.velocity = min(self.velocity, 0.0)
