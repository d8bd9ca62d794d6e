"""biorbd calls without per-call leaks: numpy arrays aliasing biorbd's own vectors.

biorbd 1.12's SWIG typemaps leak whenever a numpy array is passed where biorbd expects a
vector (GeneralizedCoordinates, Vector, Node...): the typemap allocates a new C++ vector that
is never deleted, and takes a reference to the array that is never released (so a fresh array
is never freed either). Measured here (biorbd 1.12.4, Wu model, 15 DoF, 16 markers), per 10k
calls: `model.markers(q_numpy)` +1.7 MB, `GeneralizedCoordinates(q_numpy)` +1.3 MB,
`KalmanReconsMarkers.reconstructFrame(model, markers_numpy, ...)` +5.6 MB, and 16
`NodeSegment(x, y, z)` built per frame +15.5 MB. The same calls given biorbd objects leak
nothing; see docs/notes.md.

So each vector is allocated once as a biorbd object and its data are read and written through
a numpy array over the same memory (`Aliased.array`). The alias is located in the object's
memory (an Eigen vector: data pointer, then size) and checked by a write/read round trip; where
that fails (another biorbd build), `Aliased` falls back to the leaking conversion and says so in
`leak_free`.
"""
from __future__ import annotations

import ctypes

import numpy as np

_WORDS = 4  # the Eigen storage (data pointer, size) lies within the first words of the object


class Aliased:
    """One biorbd vector object (`obj`) and a numpy array (`array`) over its data.

    Write values with set(values) (or into `array`), pass `obj` to biorbd; after biorbd wrote
    into `obj`, `array` shows the result without a copy. Not thread-safe: one owner.
    """

    def __init__(self, obj, size: int, factory=None):
        self.obj = obj
        self.size = size
        self._factory = factory  # numpy -> biorbd object, for the leaking fallback only
        self.array = _alias(obj, size)
        self.leak_free = self.array is not None
        if self.array is None:
            self.array = np.zeros(size)

    def set(self, values) -> object:
        """Copy values in; returns the biorbd object to pass on."""
        self.array[:] = values
        if not self.leak_free:
            self.obj = self._factory(self.array)
        return self.obj

    def read(self) -> np.ndarray:
        """A copy of the object's current values."""
        if self.leak_free:
            return self.array.copy()
        return np.asarray(self.obj.to_array(), dtype=float).copy()


def _alias(obj, size: int) -> np.ndarray | None:
    """A numpy array over obj's data, or None when its layout is not the expected one."""
    try:
        words = (ctypes.c_uint64 * _WORDS).from_address(int(obj.this))
    except (AttributeError, TypeError, ValueError):
        return None
    for index in range(1, _WORDS):
        if words[index] != size or words[index - 1] == 0:
            continue
        array = np.ctypeslib.as_array((ctypes.c_double * size).from_address(words[index - 1]))
        saved = array.copy()
        probe = np.arange(1.0, size + 1.0)
        array[:] = probe
        agrees = np.array_equal(np.asarray(obj.to_array(), dtype=float).ravel(), probe)
        array[:] = saved
        if agrees:
            return array
    return None


class KalmanBuffers:
    """The vectors a biorbd Kalman filter reads and writes every frame: marker targets in,
    q, qdot and qddot out."""

    def __init__(self, model, nb_markers: int):
        import biorbd

        nb_q = model.nbQ()
        self.q = Aliased(biorbd.GeneralizedCoordinates(model), nb_q, biorbd.GeneralizedCoordinates)
        self.qdot = Aliased(biorbd.GeneralizedVelocity(model), nb_q, biorbd.GeneralizedVelocity)
        self.qddot = Aliased(biorbd.GeneralizedAcceleration(model), nb_q,
                             biorbd.GeneralizedAcceleration)
        self.targets = Aliased(biorbd.Vector(3 * nb_markers), 3 * nb_markers, biorbd.Vector)
        for buffer in (self.q, self.qdot, self.qddot):
            buffer.set(0.0)

    @property
    def leak_free(self) -> bool:
        return all(b.leak_free for b in (self.q, self.qdot, self.qddot, self.targets))


class ModelBuffers:
    """Leak-free kinematics of one biorbd model: the pose goes through one GeneralizedCoordinates
    allocated once (scratch: each call overwrites it)."""

    def __init__(self, model):
        import biorbd

        self.model = model
        self.q = Aliased(biorbd.GeneralizedCoordinates(model), model.nbQ(),
                         biorbd.GeneralizedCoordinates)

    @property
    def leak_free(self) -> bool:
        return self.q.leak_free

    def markers(self, q: np.ndarray) -> np.ndarray:
        """Technical markers (markers x 3) at pose q."""
        return np.array([m.to_array() for m in self.model.technicalMarkers(self.q.set(q))])

    def markers_jacobian(self, q: np.ndarray) -> np.ndarray:
        """d(markers)/dq, (3 * markers) x nq."""
        return np.vstack([j.to_array()
                          for j in self.model.technicalMarkersJacobian(self.q.set(q))])

    def segment_frames(self, q: np.ndarray) -> np.ndarray:
        """Each segment's 4x4 homogeneous transform in the world frame (segments x 4 x 4)."""
        return np.array([rt.to_array() for rt in self.model.allGlobalJCS(self.q.set(q))])
