"""A biorbd model for inverse kinematics: loading with clear errors, names, ranges, kinematics.

A `.bioMod` file names its meshes relative to itself (e.g. `Geometry/thorax_decimate.vtp`), so
the model only loads with that folder beside it; a missing mesh is reported as such.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.ik_biorbd import ModelBuffers

FULL_TURN = 2 * math.pi - 1e-9  # a range this wide holds every angle of the rotation


def _import_biorbd():
    """biorbd, or None when it is not installed.

    biorbd's package imports matplotlib.pyplot (0.3-0.4 s of CPU at every IK start) for one
    plotting helper, surface_max_torque_actuator, which IK never uses and which biorbd disables
    when matplotlib is missing: matplotlib is hidden while biorbd loads (when nothing imported
    it before), then visible again."""
    hide = "matplotlib" not in sys.modules
    if hide:
        sys.modules["matplotlib"] = None  # type: ignore[assignment] - import raises, as if absent
    try:
        import biorbd as module
    except ImportError:  # pragma: no cover - biorbd is pinned in requirements.txt
        module = None
    finally:
        if hide and sys.modules.get("matplotlib", 0) is None:
            del sys.modules["matplotlib"]
    return module


biorbd = _import_biorbd()


@dataclass(frozen=True)
class IkModel:
    """A loaded biorbd model and what IK needs from it.

    marker_names are the model's technical markers (the ones biorbd's Kalman filter and the
    least-squares fit use), in the model's order; q_min/q_max are the DoF ranges of the file.
    """

    path: Path
    model: object
    dof_names: tuple[str, ...]
    marker_names: tuple[str, ...]
    q_min: np.ndarray
    q_max: np.ndarray
    rotational: np.ndarray  # bool per DoF: True for a rotation (radians), False for metres
    segment_names: tuple[str, ...]
    segment_parents: tuple[int, ...]  # index of each segment's parent, -1 for the root
    segment_dofs: tuple[tuple[int, ...], ...]  # per segment: indices of its own DoFs in q
    segment_markers: tuple[tuple[int, ...], ...]  # per segment: indices of its markers
    buffers: ModelBuffers  # every per-frame biorbd call goes through these (no leak)

    @property
    def nb_q(self) -> int:
        return len(self.dof_names)

    @property
    def nb_markers(self) -> int:
        return len(self.marker_names)

    def markers(self, q: np.ndarray) -> np.ndarray:
        """Model marker positions (markers x 3, metres) at pose q."""
        return self.buffers.markers(q)

    def markers_jacobian(self, q: np.ndarray) -> np.ndarray:
        """d(markers)/dq as (3 * markers) x nq, rows x, y, z of marker 0, then marker 1, ..."""
        return self.buffers.markers_jacobian(q)

    def segment_frames(self, q: np.ndarray) -> np.ndarray:
        """Every segment's pose in the world frame at q: segments x 4 x 4 (rotation, origin)."""
        return self.buffers.segment_frames(q)


def load_model(path: str | Path) -> IkModel:
    """Load a biorbd model (relative paths as in config files); ConfigError naming the file if
    it is missing, unreadable, or unusable for IK."""
    if biorbd is None:
        raise ConfigError("biorbd is not installed: inverse kinematics needs it "
                          "(pip install biorbd, or conda-forge on aarch64)")
    resolved = resolve_data_path(str(path))
    if not resolved.is_file():
        raise ConfigError(f"model_path: no such biorbd model file: {resolved}")
    try:
        model = biorbd.Model(str(resolved))
    except RuntimeError as error:
        detail = " ".join(str(error).split())
        hint = ""
        if "Failed to load file" in detail:
            hint = (" (a .bioMod names its meshes relative to itself: keep its Geometry/ "
                    "folder beside it)")
        raise ConfigError(f"model_path: cannot load biorbd model {resolved}: {detail}{hint}")
    return _describe(resolved.resolve(), model)


def dof_ranges(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q_min, q_max, rotational) per DoF of a biorbd model, in its order."""
    q_min, q_max, rotational = [], [], []
    for index in range(model.nbSegment()):
        segment = model.segment(index)
        for q_range in segment.QRanges():
            q_min.append(q_range.min())
            q_max.append(q_range.max())
        # biorbd lists a segment's translations before its rotations.
        rotational += [False] * segment.nbDofTrans() + [True] * segment.nbDofRot()
    return (np.array(q_min, dtype=float), np.array(q_max, dtype=float),
            np.array(rotational, dtype=bool))


def free_rotations(q_min: np.ndarray, q_max: np.ndarray, rotational: np.ndarray) -> np.ndarray:
    """Per DoF: a rotation whose range spans a full turn (biorbd's [-pi, pi] for a rotation
    without `ranges`): IK publishes it wrapped (ik_continuity), so a consumer takes its steps
    modulo 2 pi (a wrap is no motion)."""
    return rotational & ((q_max - q_min) >= FULL_TURN)


def wrapped_step(step: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Steps between two poses with those of free rotations taken into [-pi, pi)."""
    if free.any():
        step = step.copy()
        step[free] = (step[free] + math.pi) % (2 * math.pi) - math.pi
    return step


def _describe(path: Path, model) -> IkModel:
    if model.nbQ() == 0:
        raise ConfigError(f"model_path: {path} has no degree of freedom")
    if model.nbQ() != model.nbQdot():
        raise ConfigError(f"model_path: {path} uses quaternions, which the IK node does not "
                          "support (use Euler-angle rotations)")
    marker_names = tuple(n.to_string() for n in model.technicalMarkerNames())
    if not marker_names:
        raise ConfigError(f"model_path: {path} has no technical marker to track")
    if len(set(marker_names)) != len(marker_names):
        raise ConfigError(f"model_path: {path} has duplicated marker names")
    q_min, q_max, rotational = dof_ranges(model)
    segment_names, segment_dofs, first = [], [], 0
    for index in range(model.nbSegment()):
        segment = model.segment(index)
        segment_names.append(segment.name().to_string())
        segment_dofs.append(tuple(range(first, first + segment.nbDof())))
        first += segment.nbDof()
    technical = [m for m in model.markers() if m.isTechnical()]
    parents = [m.parent().to_string() for m in technical]
    return IkModel(
        path=path,
        model=model,
        dof_names=tuple(n.to_string() for n in model.nameDof()),
        marker_names=marker_names,
        q_min=q_min,
        q_max=q_max,
        rotational=rotational,
        segment_names=tuple(segment_names),
        segment_parents=tuple(segment_names.index(p) if p in segment_names else -1
                              for p in (model.segment(i).parent().to_string()
                                        for i in range(model.nbSegment()))),
        segment_dofs=tuple(segment_dofs),
        segment_markers=tuple(tuple(i for i, p in enumerate(parents) if p == name)
                              for name in segment_names),
        buffers=ModelBuffers(model),
    )
