"""Synthetic marker trajectories with known joint angles, from a model's own forward kinematics.

Used by the IK tests and benchmark: the ground truth q is exact, the markers get Gaussian noise.
The default motion is a shoulder abduction-like movement of the Wu model seen from a Z-up lab
(thorax standing, away from the xyz gimbal lock of its free root).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biosig_ros.processing.ik_model import IkModel
from biosig_ros.signals import MarkerFrame

# Wu model: thorax at (0.5, 0.7, 1.05) m upright in a Z-up lab, arm along the side.
WU_NEUTRAL = np.array([0.5, 0.7, 1.05, np.pi / 2, 0.0, 0.3,
                       -0.15, -0.2, -0.2, 0.1, 0.15, 0.5, 0.8, -1.2, 0.5])
# Peak deviation from neutral of each DoF during the movement.
WU_AMPLITUDE = np.array([0.05, 0.05, 0.02, 0.15, 0.1, 0.2,
                         0.1, 0.1, 0.15, 0.15, 0.15, 0.4, 0.6, 0.5, 0.4])


@dataclass
class Trajectory:
    q: np.ndarray          # frames x nq, ground truth
    markers: np.ndarray    # frames x markers x 3, metres, with noise
    frame_rate: float
    marker_names: list[str]

    def frame(self, index: int, stamp0: float = 0.0) -> MarkerFrame:
        return MarkerFrame(positions=self.markers[index].copy(),
                           marker_names=list(self.marker_names), frame_number=index,
                           stamp=stamp0 + index / self.frame_rate, frame_rate=self.frame_rate)


def synthetic_trajectory(model: IkModel, seconds: float = 10.0, frame_rate: float = 100.0,
                         noise: float = 0.001, seed: int = 0,
                         neutral: np.ndarray = WU_NEUTRAL,
                         amplitude: np.ndarray = WU_AMPLITUDE,
                         start_time: float = 0.0) -> Trajectory:
    """Smooth multi-sine motion around neutral; noise: marker noise std in metres per axis.
    The same seed gives the same motion: start_time continues it (pieces at any rate join)."""
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * frame_rate))
    t = start_time + np.arange(frames)[:, None] / frame_rate
    # Two incommensurate sines per DoF (0.1-0.5 Hz) with random phases.
    f1, f2 = rng.uniform(0.1, 0.3, model.nb_q), rng.uniform(0.25, 0.5, model.nb_q)
    p1, p2 = rng.uniform(0, 2 * np.pi, (2, model.nb_q))
    q = neutral + amplitude * (0.6 * np.sin(2 * np.pi * f1 * t + p1)
                               + 0.4 * np.sin(2 * np.pi * f2 * t + p2))
    markers = np.stack([model.markers(qi) for qi in q])
    markers = markers + np.random.default_rng([seed, int(start_time * 1e6)]).normal(
        0.0, noise, markers.shape)
    return Trajectory(q, markers, frame_rate, list(model.marker_names))
