"""Inverse kinematics, one marker frame at a time: biorbd's extended Kalman filter or least squares.

Both methods start from a bounded least-squares fit of the first frame with enough markers (a
filter started from zeros can lock onto a wrong pose or diverge). Every frame is then checked:
a non-finite pose or one outside the model's ranges by more than a range width restarts from a
fresh bounded fit at once; a mean marker residual above the start fit's by `divergence_residual`
for `divergence_frames` frames in a row triggers a fresh fit, and tracking restarts from it only
if it explains the markers clearly better (otherwise the markers themselves got worse, e.g. a
slipped marker, and the fit's residual becomes the new reference). A frame that cannot follow
the last one (frame number or stamp going back, markers jumping faster than `max_marker_speed`:
a replay's loop restart, a restarted source) restarts tracking from a fresh fit too. Free
rotations are wrapped and every discontinuity is named per frame (ik_continuity).
"""
from __future__ import annotations

import math
import time

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.ik_biorbd import KalmanBuffers
from biosig_ros.processing.ik_continuity import PoseContinuity, marker_jump, source_restart
from biosig_ros.processing.ik_model import IkModel, load_model
from biosig_ros.processing.ik_quality import QualityCheck
# (the settings, result and state live in ik_settings; imported from here by callers too)
from biosig_ros.processing.ik_settings import (METHODS, UNIT_SCALES, IkResult,  # noqa: F401
                                                IkSettings, IkState)
from biosig_ros.processing.marker_matching import MarkerMatcher, parse_name_map
from biosig_ros.signals import MarkerFrame

# Extra filter iterations on the first frame after skipped ones: the filter's covariance
# assumes one frame period since its last update, so one update catches up only part of the
# motion of a longer gap (errors up to 19 degrees after 20 skipped frames; 2-3 with more).
# One more per _CATCH_UP_FRAMES skipped, at most _CATCH_UP: each costs a frame's solve, and an
# overloaded node that paid four after every short gap solved a third fewer frames.
_CATCH_UP = 4
_CATCH_UP_FRAMES = 10
_RESTART_GAP = 0.5  # seconds of skipped frames after which the filter restarts from a fit
_SAME_FIT = 0.001  # metres of mean residual within which two fits are equally good


def least_squares_solver():
    """scipy's least_squares, imported on first use: scipy.optimize's imports take about
    0.45 s of CPU, which the IK node spends after it is ready (its solver thread calls this
    while the graph's other nodes still start), not before."""
    from scipy.optimize import least_squares
    return least_squares


class IkSolver:
    """settings + state + step(frame) -> IkResult | None (None: too few visible markers)."""

    def __init__(self, settings: IkSettings, model: IkModel | None = None):
        self.settings = settings
        self.model = model if model is not None else load_model(settings.model_path)
        needed = math.ceil(self.model.nb_q / 3)
        if settings.min_visible_markers < needed:
            raise ConfigError(
                f"parameter 'min_visible_markers' must be at least {needed} for "
                f"{self.model.nb_q} degrees of freedom (3 coordinates per marker)")
        if settings.min_visible_markers > self.model.nb_markers:
            raise ConfigError(
                f"parameter 'min_visible_markers' ({settings.min_visible_markers}) exceeds the "
                f"model's {self.model.nb_markers} markers")
        self.matcher = MarkerMatcher(
            self.model.marker_names,
            parse_name_map(settings.marker_name_map, self.model.marker_names),
            settings.zero_is_occluded, settings.strip_subject_prefix)
        self.quality = QualityCheck(self.model)
        self.continuity = PoseContinuity(self.model, settings.max_pose_step,
                                         settings.max_translation_step)
        self.state = IkState()
        self._kalman = None
        self._kalman_buffers = None
        width = self.model.q_max - self.model.q_min
        self._sane_min = self.model.q_min - width
        self._sane_max = self.model.q_max + width
        # The bounded fit lets a free rotation cross its wrap point (a bound there would push
        # a pose near +-pi onto another Euler solution); the result is wrapped afterwards.
        free = self.continuity.free
        self._fit_min = np.where(free, self.model.q_min - 2 * np.pi, self.model.q_min)
        self._fit_max = np.where(free, self.model.q_max + 2 * np.pi, self.model.q_max)

    @property
    def dof_names(self) -> tuple[str, ...]:
        return self.model.dof_names

    @property
    def marker_names(self) -> tuple[str, ...]:
        return self.model.marker_names

    def reset(self) -> None:
        """Forget the pose: the next frame starts from a bounded fit again."""
        self.state = IkState()
        self.continuity.reset()
        self._kalman = None

    def step(self, frame: MarkerFrame) -> IkResult | None:
        started = time.perf_counter()
        matched = self.matcher.match(
            frame.marker_names, frame.positions * self.settings.unit_scale, frame.occluded)
        targets = matched.positions
        visible = int(matched.visible.sum())
        if visible < self.settings.min_visible_markers:
            self.state.frames_insufficient += 1
            return None
        state = self.state
        event = ""
        skipped = self._skipped_frames(frame)
        rate = frame.frame_rate or 100.0
        if not state.initialised:
            q, qdot, qddot = self._initialise(targets, frame, self._bounded_fit(targets))
            event = "initialised"
        else:
            why = self._stream_break(frame, targets, skipped)
            if why:
                q, qdot, qddot = self._restart(targets, why)
                event = "reinitialised"
            elif self._kalman is not None and skipped > _RESTART_GAP * rate:
                # Beyond half a second the filter's motion model says nothing (a catch-up
                # left steps up to 13 degrees beyond the motion).
                q, qdot, qddot = self._restart(
                    targets, f"{skipped} frames skipped: restarted from a fresh fit")
                event = "reinitialised"
            else:
                q, qdot, qddot = self._track(targets, frame, skipped)
        q = self._wrapped(q)
        residuals, mean_residual = self._residuals(q, targets)
        if not event:
            restart = self._check(q, mean_residual, targets)
            if restart is not None:
                q, qdot, qddot = self._initialise(targets, frame, restart)
                q = self._wrapped(q)
                residuals, mean_residual = self._residuals(q, targets)
                event = "reinitialised"
                state.reinitialisations += 1
        state.q, state.qdot, state.qddot = q, qdot, qddot
        state.last_frame_number = frame.frame_number
        state.last_stamp = frame.stamp
        state.last_targets = targets
        state.frames_solved += 1
        quality = self.quality.check(q, matched.visible)
        reason = state.last_event_reason if event == "reinitialised" else ""
        continuity = self.continuity.follow(
            q, "tracking started" if event == "initialised" else
            f"re-initialised: {reason}" if event else "")
        return IkResult(frame.frame_number, frame.stamp, q, qdot, qddot, residuals,
                        mean_residual, visible, event, time.perf_counter() - started,
                        reason, skipped, quality.out_of_range, quality.underdetermined,
                        continuity.discontinuity, continuity.reason, continuity.stepped,
                        continuity.largest_rotation_step)

    def _stream_break(self, frame: MarkerFrame, targets: np.ndarray, skipped: int) -> str:
        """Why this frame cannot follow the last solved one ("" when it can)."""
        state = self.state
        why = source_restart(state.last_frame_number, state.last_stamp,
                             int(frame.frame_number), frame.stamp, frame.frame_rate)
        if why:
            return why
        elapsed = ((skipped + 1) / frame.frame_rate if frame.frame_rate > 0
                   else frame.stamp - (state.last_stamp or frame.stamp))
        return marker_jump(state.last_targets, targets, elapsed,
                           self.settings.max_marker_speed, self.model.marker_names)

    def _wrapped(self, q: np.ndarray) -> np.ndarray:
        """q with free rotations wrapped (ik_continuity); the filter's state follows, so that
        it never drifts by turns (setInitState sets the state only: the covariance is kept,
        and the next frames are the same modulo 2 pi)."""
        q, moved = self.continuity.wrap(q)
        if moved and self._kalman is not None:
            buffers = self._kalman_buffers
            self._kalman.setInitState(buffers.q.set(q), buffers.qdot.obj, buffers.qddot.obj)
        return q

    # --- start and re-start -------------------------------------------------------------

    def _restart(self, targets: np.ndarray, reason: str):
        """Restart tracking at rest from a fresh bounded fit started at the last pose. The
        Kalman filter itself is kept (a new one spends 25-40 ms settling): only its state moves
        to the fit."""
        state = self.state
        state.last_event_reason = reason
        state.reinitialisations += 1
        q = self._bounded_fit(targets)
        _, state.baseline_residual = self._residuals(q, targets)
        state.diverging_frames = 0
        if self._kalman is None:
            return q, np.zeros(self.model.nb_q), None
        buffers = self._kalman_buffers
        self._kalman.setInitState(buffers.q.set(q), buffers.qdot.set(0.0),
                                  buffers.qddot.set(0.0))
        return self._kalman_frame(targets)

    def _initialise(self, targets: np.ndarray, frame: MarkerFrame, q: np.ndarray):
        """(Re)start tracking from pose q, a bounded fit of this frame."""
        state = self.state
        _, state.baseline_residual = self._residuals(q, targets)
        state.diverging_frames = 0
        state.initialised = True
        state.last_good_q = q
        zeros = np.zeros(self.model.nb_q)
        if self.settings.method == "least_squares":
            return q, zeros, None
        import biorbd

        frequency = self.settings.kalman_frequency or frame.frame_rate or 100.0
        self._kalman_rate = float(frequency)
        params = biorbd.KalmanParam(float(frequency), self.settings.kalman_noise_factor,
                                    self.settings.kalman_error_factor)
        # A new filter rather than setInitState on the old one: a diverged filter's
        # covariance is no better than its pose.
        self._kalman = biorbd.KalmanReconsMarkers(self.model.model, params)
        if self._kalman_buffers is None:  # allocated once: numpy arguments leak (ik_biorbd)
            self._kalman_buffers = KalmanBuffers(self.model.model, self.model.nb_markers)
        buffers = self._kalman_buffers
        self._kalman.setInitState(buffers.q.set(q), buffers.qdot.set(0.0),
                                  buffers.qddot.set(0.0))
        # The filter's first frame iterates from the start state to settle its covariance.
        return self._kalman_frame(targets)

    def _bounded_fit(self, targets: np.ndarray) -> np.ndarray:
        """Least squares within the model's ranges. Starts: the last trusted pose (if any) and
        the middle of the ranges with the root translated onto the markers. The last trusted
        pose's solution wins unless the other fits the markers clearly better, so that a
        restart does not flip to an equivalent pose (another Euler solution of the root)."""
        model = self.model
        visible = np.isfinite(targets).all(axis=1)
        middle = (model.q_min + model.q_max) / 2
        if not model.rotational[:3].any() and model.nb_q >= 3:
            # A free root: shift it so that the marker clouds' centroids coincide.
            middle[:3] += (targets[visible].mean(axis=0)
                           - model.markers(middle)[visible].mean(axis=0))
        starts = [middle]
        last = self.state.last_good_q
        if last is not None and np.isfinite(last).all():
            starts.insert(0, last)
        fits = []
        for start in starts:
            q = self._fit(targets, visible, np.clip(start, model.q_min, model.q_max),
                          bounded=True).x
            fits.append((self._residuals(q, targets)[1], q))
        best_residual = min(residual for residual, _ in fits)
        q = next(q for residual, q in fits if residual <= best_residual + _SAME_FIT)
        if last is not None and np.isfinite(last).all():
            # Same markers, nearest angles: no 2*pi jump in the published joint angles.
            turns = np.round((last - q) / (2 * np.pi)) * model.rotational
            q = q + 2 * np.pi * turns
        return q

    def _fit(self, targets, visible, start, bounded: bool):
        model = self.model
        seen = targets[visible]

        def residual(q):
            return (model.markers(q)[visible] - seen).ravel()

        def jacobian(q):
            return model.markers_jacobian(q).reshape(-1, 3, model.nb_q)[visible].reshape(
                -1, model.nb_q)

        least_squares = least_squares_solver()
        if bounded:
            return least_squares(residual, start, jac=jacobian, method="trf", xtol=1e-8,
                                 bounds=(self._fit_min, self._fit_max))
        return least_squares(residual, start, jac=jacobian, method="lm", xtol=1e-6)

    # --- tracking -----------------------------------------------------------------------

    def _track(self, targets: np.ndarray, frame: MarkerFrame, skipped: int):
        state = self.state
        if self.settings.method == "kalman":
            q, qdot, qddot = self._kalman_frame(targets)
            catch_up = min(_CATCH_UP, 1 + skipped // _CATCH_UP_FRAMES) if skipped else 0
            for _ in range(catch_up):  # a correction without moving on
                buffers = self._kalman_buffers
                self._kalman.setInitState(None, buffers.qdot.set(0.0), buffers.qddot.set(0.0))
                q, qdot, qddot = self._kalman_frame(targets)
            if skipped:
                qdot, qddot = self._bridge(q, (skipped + 1) / self._kalman_rate)
            return q, qdot, qddot
        visible = np.isfinite(targets).all(axis=1)
        q = self._fit(targets, visible, state.q, bounded=False).x
        dt = self._elapsed(frame)
        qdot = (q - state.q) / dt if dt > 0 else np.zeros_like(q)
        return q, qdot, None

    def _kalman_frame(self, targets: np.ndarray):
        buffers = self._kalman_buffers
        # NaN markers are occluded for biorbd's filter: they do not update the state.
        self._kalman.reconstructFrame(self.model.model, buffers.targets.set(targets.ravel()),
                                      buffers.q.obj, buffers.qdot.obj, buffers.qddot.obj)
        return buffers.q.read(), buffers.qdot.read(), buffers.qddot.read()

    def _skipped_frames(self, frame: MarkerFrame) -> int:
        """Frames between the last solved one and this one (0 when consecutive)."""
        last = self.state.last_frame_number
        if last is None:
            return 0
        return max(0, int(frame.frame_number) - int(last) - 1)

    def _bridge(self, q: np.ndarray, seconds: float):
        """After frames the filter did not see (and the catch-up iterations, which hold the
        pose still): velocity from the pose change over the whole interval, acceleration zero,
        so that the next prediction continues the motion."""
        buffers = self._kalman_buffers
        qdot = (q - self.state.q) / seconds
        qddot = np.zeros_like(q)
        self._kalman.setInitState(None, buffers.qdot.set(qdot), buffers.qddot.set(qddot))
        return qdot, qddot

    def _elapsed(self, frame: MarkerFrame) -> float:
        state = self.state
        if frame.frame_rate > 0 and state.last_frame_number is not None:
            frames = int(frame.frame_number) - int(state.last_frame_number)
            if frames > 0:
                return frames / frame.frame_rate
        if state.last_stamp is not None:
            return frame.stamp - state.last_stamp
        return 0.0

    # --- checks -------------------------------------------------------------------------

    def _residuals(self, q: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
        if not np.isfinite(q).all():
            return np.full(len(targets), np.nan), math.inf
        residuals = np.linalg.norm(self.model.markers(q) - targets, axis=1)
        seen = residuals[np.isfinite(residuals)]
        return residuals, float(seen.mean()) if len(seen) else math.nan

    def _check(self, q: np.ndarray, mean_residual: float,
               targets: np.ndarray) -> np.ndarray | None:
        """None while tracking is trusted; else the pose to restart from (and the reason in
        state.last_event_reason)."""
        state = self.state
        if not np.isfinite(q).all() or not math.isfinite(mean_residual):
            state.last_event_reason = "non-finite pose"
            return self._bounded_fit(targets)
        outside = (q < self._sane_min) | (q > self._sane_max)
        if outside.any():
            names = [self.model.dof_names[i] for i in np.flatnonzero(outside)]
            state.last_event_reason = f"pose far outside the model's ranges ({', '.join(names)})"
            return self._bounded_fit(targets)
        threshold = self.settings.divergence_residual
        if mean_residual <= state.baseline_residual + threshold:
            state.diverging_frames = 0
            state.last_good_q = q
            return None
        state.diverging_frames += 1
        if state.diverging_frames < self.settings.divergence_frames:
            return None
        # Diverged, or did the markers themselves get worse (a marker slipped or is
        # mislabelled)? A fresh fit tells: restart only if it explains them clearly better.
        state.diverging_frames = 0
        candidate = self._bounded_fit(targets)
        _, candidate_residual = self._residuals(candidate, targets)
        if candidate_residual + threshold / 2 < mean_residual:
            state.last_event_reason = (
                f"mean marker residual {mean_residual * 1000:.0f} mm for "
                f"{self.settings.divergence_frames} frames, a fresh fit gives "
                f"{candidate_residual * 1000:.0f} mm")
            return candidate
        state.baseline_residual = candidate_residual
        state.baseline_updates += 1
        return None
