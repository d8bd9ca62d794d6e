"""The skeleton of a biorbd model for drawing: segment parent/child pairs and segment origins.

A line is drawn per parent-child pair of segments (the ground is not a segment), from the
parent's origin to the child's, both taken from biorbd's global segment frames (allGlobalJCS)
at the current pose. Models converted from OpenSim chain virtual segments (offsets, reset
axes) that share their parent's origin: their lines have zero length and draw nothing.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from biosig_ros.processing.ik_model import IkModel, load_model


class Skeleton:
    """Topology and forward kinematics of one model; `origins(q)` is segments x 3 (metres)."""

    def __init__(self, model: IkModel):
        self._ik_model = model
        self.path = model.path
        self.dof_names = list(model.dof_names)
        self.rotational = [bool(r) for r in model.rotational]
        self.segment_names = list(model.segment_names)
        self.pairs: list[tuple[int, int]] = [
            (parent, child) for child, parent in enumerate(model.segment_parents) if parent >= 0]
        self._order_cache: tuple[tuple[str, ...], np.ndarray | None] = ((), None)
        self._lock = threading.Lock()  # biorbd updates the model's state while it computes
        self._origins_of: bytes | None = None  # the pose the cached origins are for
        self._origins: np.ndarray | None = None

    @classmethod
    def load(cls, path: str) -> "Skeleton":
        """From a .bioMod path as written in config files (ConfigError naming a bad file)."""
        return cls(load_model(path))

    def meta(self) -> dict:
        return {"segments": self.segment_names, "pairs": self.pairs, "dofs": self.dof_names,
                "rotational": self.rotational, "model": self.path.name}

    def q_from(self, names, positions) -> np.ndarray | None:
        """The model's q from a JointState's names and positions (matched by name); None when a
        model DoF is missing or a value is not finite."""
        names = tuple(names)
        cached_names, order = self._order_cache
        if names != cached_names:
            lookup = {name: i for i, name in enumerate(names)}
            order = (np.array([lookup[n] for n in self.dof_names])
                     if all(n in lookup for n in self.dof_names) else None)
            self._order_cache = (names, order)
        if order is None or len(positions) < len(names):
            return None
        q = np.asarray(positions, dtype=float)[order]
        return q if np.all(np.isfinite(q)) else None

    def origins(self, q: np.ndarray) -> np.ndarray:
        """Global origins of every segment at pose q (segments x 3, metres; read-only). The
        page and the MarkerArray draw the same newest pose: computed once for both."""
        pose = np.asarray(q, dtype=float).tobytes()
        with self._lock:
            if pose != self._origins_of:
                # Through the model's leak-free pose vector: biorbd given a numpy q leaks
                # about 0.4 kB a call (46 MB per hour in a live view).
                origins = self._ik_model.segment_frames(q)[:, :3, 3].copy()
                origins.flags.writeable = False
                self._origins, self._origins_of = origins, pose
            return self._origins

    def line_points(self, origins: np.ndarray) -> np.ndarray:
        """pairs x 2 x 3: the ends (parent origin, child origin) of each skeleton line."""
        if not self.pairs:
            return np.zeros((0, 2, 3))
        pairs = np.array(self.pairs)
        return np.stack([origins[pairs[:, 0]], origins[pairs[:, 1]]], axis=1)


def dof_display(names: list[str], rotational: list[bool] | None) -> list[dict]:
    """How the page shows each DoF: rotations in degrees, translations in millimetres (by the
    model when known, else by name: biorbd ends a translation's name with TransX/Y/Z, and
    a name like scapula_rotation_transform_RotX is a rotation)."""
    shown = []
    for i, name in enumerate(names):
        rotation = rotational[i] if rotational is not None and i < len(rotational) else (
            not name.split("_")[-1].lower().startswith("trans"))
        shown.append({"name": name, "unit": "deg" if rotation else "mm",
                      "scale": 180.0 / math.pi if rotation else 1000.0})
    return shown
