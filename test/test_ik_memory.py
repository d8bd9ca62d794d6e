"""IK memory (no ROS): the biorbd calls made per frame leak nothing, and the solver's resident
memory stays flat over tens of thousands of frames (issue #11: ik_node grew ~0.5 GB/hour).

Resident memory is read from /proc; a leak of the size biorbd's numpy typemaps cause
(150-600 bytes per call) shows as megabytes over 10k calls, so the bounds are generous."""
import gc

import numpy as np
import pytest

from biosig_ros.processing.ik_biorbd import Aliased, KalmanBuffers
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.ik_solver import IkSettings, IkSolver
from biosig_ros.processing.ik_synthetic import WU_NEUTRAL, synthetic_trajectory
from biosig_ros.signals import MarkerFrame
from biosig_ros.viewers.skeleton import Skeleton

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def growth_mb(call, count: int, warm_up: int = 1000) -> float:
    for _ in range(warm_up):
        call()
    gc.collect()
    before = rss_mb()
    for _ in range(count):
        call()
    gc.collect()
    return rss_mb() - before


@pytest.fixture(scope="module")
def model():
    return load_model(WU)


def test_aliased_vectors_are_biorbd_memory(model):
    """Values written through the numpy alias are what biorbd reads, and biorbd's results
    are what the alias shows, for every vector type the solver uses."""
    import biorbd

    buffers = KalmanBuffers(model.model, model.nb_markers)
    assert buffers.leak_free and model.buffers.q.leak_free
    values = np.linspace(-1, 1, model.nb_q)
    for vector in (buffers.q, buffers.qdot, buffers.qddot):
        vector.set(values)
        np.testing.assert_array_equal(vector.obj.to_array(), values)
    targets = np.arange(3.0 * model.nb_markers)
    buffers.targets.set(targets)
    np.testing.assert_array_equal(buffers.targets.obj.to_array(), targets)
    # biorbd writes into the object (here through the numpy-converting call, once)
    reference = biorbd.GeneralizedCoordinates(WU_NEUTRAL)
    expected = np.array([m.to_array() for m in model.model.technicalMarkers(reference)])
    np.testing.assert_allclose(model.markers(WU_NEUTRAL.copy()), expected, atol=1e-12)
    frames = model.segment_frames(WU_NEUTRAL.copy())
    assert frames.shape == (len(model.segment_names), 4, 4)
    np.testing.assert_allclose(frames[0], model.model.globalJCS(reference, 0).to_array())


def test_alias_falls_back_where_the_layout_is_unknown():
    class Opaque:  # no SWIG pointer: no alias, the (leaking) conversion is used instead
        def to_array(self):
            return np.zeros(3)

    vector = Aliased(Opaque(), 3, factory=lambda array: ("converted", tuple(array)))
    assert not vector.leak_free
    assert vector.set([1.0, 2.0, 3.0]) == ("converted", (1.0, 2.0, 3.0))


@pytest.mark.slow  # 40k biorbd calls: a soak (test/tiers.py)
def test_per_frame_biorbd_calls_do_not_leak(model):
    """Each call with a fresh numpy pose, as scipy and the solver make them; before the
    aliasing each of these leaked 1.5-1.7 MB per 10k calls (more when the array is fresh);
    the live view's skeleton leaked 46 MB per hour in the 60-minute soak."""
    rng = np.random.default_rng(0)
    poses = WU_NEUTRAL + 0.1 * rng.standard_normal((64, model.nb_q))
    counter = iter(range(10**9))
    skeleton = Skeleton(model)

    def pose():
        return poses[next(counter) % len(poses)].copy()

    for name, call in (("markers", lambda: model.markers(pose())),
                       ("markers_jacobian", lambda: model.markers_jacobian(pose())),
                       ("segment_frames", lambda: model.segment_frames(pose())),
                       ("live view skeleton", lambda: skeleton.origins(pose()))):
        grown = growth_mb(call, 10_000)
        print(f"{name}: {grown:+.2f} MB per 10k calls")
        assert grown < 0.5, f"{name} grows {grown:.2f} MB per 10k calls"


def frames_forever(trajectory):
    """The trajectory played forwards then backwards, again and again, with running frame
    numbers: a stream that does not end and has no seam (a jump back to the first frame is a
    loop restart, which IK rightly re-initialises on)."""
    number = 0
    forwards = list(range(len(trajectory.q)))
    while True:
        for i in forwards + forwards[-2:0:-1]:
            yield MarkerFrame(trajectory.markers[i].copy(), list(trajectory.marker_names),
                              number, number / trajectory.frame_rate, trajectory.frame_rate)
            number += 1


@pytest.mark.slow  # tens of thousands of frames: a soak (test/tiers.py)
@pytest.mark.parametrize("method, frames", [("kalman", 8_000), ("least_squares", 5_000)])
def test_solver_memory_is_flat(model, method, frames):
    """Issue #11: under 1 MB of resident growth per 10k frames after warm-up (before: Kalman
    +15 MB, least squares +50 MB per 10k frames)."""
    trajectory = synthetic_trajectory(model, seconds=10.0, noise=0.001, seed=0)
    solver = IkSolver(IkSettings(method=method), model)
    stream = frames_forever(trajectory)
    grown = growth_mb(lambda: solver.step(next(stream)), frames, warm_up=2000)
    print(f"{method}: {grown:+.2f} MB over {frames} frames")
    assert solver.state.reinitialisations == 0
    assert grown < frames / 10_000, f"{method}: {grown:.2f} MB over {frames} frames"
