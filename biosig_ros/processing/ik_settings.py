"""The IK solver's parameters (also the IK node's ROS parameters), its per-frame result and
its state between frames."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.settings import doc_field, require_choice

METHODS = ("kalman", "least_squares")
UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001}


@dataclass
class IkSettings:
    """Parameters of the solver (also the IK node's ROS parameters)."""

    model_path: str = doc_field("data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod",
                                "biorbd .bioMod file (its Geometry/ folder beside it)")
    method: str = doc_field("kalman", "kalman (biorbd extended Kalman filter) or least_squares")
    marker_units: str = doc_field("m", "units of the incoming marker positions: m, cm or mm")
    marker_name_map: list[str] = doc_field(
        [], "renames incoming markers: entries 'incoming=model' (a YAML mapping "
        "marker_name_map: {incoming: model} in a parameter file works too)")
    strip_subject_prefix: bool = doc_field(
        True, "an incoming 'Subject:NAME' (Vicon) that is not a model marker matches NAME")
    zero_is_occluded: bool = doc_field(True, "a marker at exactly (0, 0, 0) is occluded (Vicon)")
    min_visible_markers: int = doc_field(
        6, "frames with fewer visible model markers are skipped", range=(1, None))
    kalman_frequency: float = doc_field(
        0.0, "Hz of the Kalman model; 0 = the stream's frame_rate", range=(0.0, None))
    kalman_noise_factor: float = doc_field(1e-10, "biorbd KalmanParam noiseFactor",
                                           range=(0.0, None))
    kalman_error_factor: float = doc_field(1e-5, "biorbd KalmanParam errorFactor",
                                           range=(0.0, None))
    divergence_residual: float = doc_field(
        0.01, "metres of mean marker residual above the start fit's that count as diverging",
        range=(0.0, None))
    divergence_frames: int = doc_field(
        5, "consecutive diverging frames before re-initialising", range=(1, None))
    max_pose_step: float = doc_field(
        0.1, "radians: a rotation changing more than this from the previous published pose "
        "flags a discontinuity on ik/quality", range=(0.0, None))
    max_translation_step: float = doc_field(
        0.02, "metres: the same for a translation", range=(0.0, None))
    max_marker_speed: float = doc_field(
        10.0, "m/s: a marker moving faster between frames means the stream jumped (a replay's "
        "loop restart, relabelled markers): tracking restarts from a fresh fit",
        range=(0.0, None))

    def __post_init__(self) -> None:
        if not self.model_path:
            raise ConfigError("parameter 'model_path' is empty: give a .bioMod file")
        require_choice("method", self.method, METHODS)
        require_choice("marker_units", self.marker_units, UNIT_SCALES)
        if self.min_visible_markers < 1:
            raise ConfigError("parameter 'min_visible_markers' must be at least 1")
        if not (self.kalman_frequency >= 0 and math.isfinite(self.kalman_frequency)):
            raise ConfigError("parameter 'kalman_frequency' must be >= 0 (0 = stream rate)")
        for name in ("kalman_noise_factor", "kalman_error_factor", "divergence_residual",
                     "max_pose_step", "max_translation_step", "max_marker_speed"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"parameter '{name}' must be a positive number, got {value!r}")
        if self.divergence_frames < 1:
            raise ConfigError("parameter 'divergence_frames' must be at least 1")

    @property
    def unit_scale(self) -> float:
        return UNIT_SCALES[self.marker_units]


@dataclass
class IkResult:
    """The pose solved for one frame. residuals: metres per model marker, NaN when unseen."""

    frame_number: int
    stamp: float
    q: np.ndarray
    qdot: np.ndarray
    qddot: np.ndarray | None          # None for least squares
    residuals: np.ndarray
    mean_residual: float
    visible_markers: int
    event: str = ""                   # "initialised" or "reinitialised" on those frames
    solve_time: float = 0.0           # seconds spent in step()
    event_reason: str = ""            # why it re-initialised
    frames_skipped: int = 0           # frames since the last solved one (by frame numbers)
    out_of_range: list[int] = field(default_factory=list)  # DoF indices outside the ranges
    underdetermined: list[str] = field(default_factory=list)  # segments short of markers
    discontinuity: bool = False       # this pose does not continue the previous published one
    discontinuity_reason: str = ""
    stepped: list[int] = field(default_factory=list)  # DoF indices beyond their step limit
    largest_rotation_step: float = 0.0  # rad from the previous published pose


@dataclass
class IkState:
    initialised: bool = False
    q: np.ndarray | None = None
    qdot: np.ndarray | None = None
    qddot: np.ndarray | None = None
    baseline_residual: float = 0.0    # mean residual of the last start fit
    diverging_frames: int = 0
    last_good_q: np.ndarray | None = None  # pose of the last frame that passed the checks
    baseline_updates: int = 0          # fresh fits that confirmed the tracked pose
    last_frame_number: int | None = None
    last_stamp: float | None = None
    frames_solved: int = 0
    frames_insufficient: int = 0      # skipped: fewer than min_visible_markers
    reinitialisations: int = 0
    last_event_reason: str = ""
    last_targets: np.ndarray | None = None  # matched marker positions of the last solved frame
