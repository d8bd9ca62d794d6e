"""IMU processing: the biosiglive-compatible core against the installed biosiglive 2.0.3's
RealTimeProcessing.process_imu on the same calls (bit for bit), its 9-component crash, and the
streaming core on synthetic signals with known answers. No ROS."""
from __future__ import annotations

import numpy as np
import pytest
from biosiglive import RealTimeProcessing

from biosig_ros.errors import ConfigError
from biosig_ros.processing.imu_processing import (
    GRAVITY, BiosigliveImu, ImuProcessingSettings, StreamingImu, select_imu_channels)
from biosig_ros.processing.imu_processor import ImuProcessor
from biosig_ros.signals import SignalChunk

RATE = 148.148  # Trigno aux rate


def imu_signal(imus: int, samples: int, components: int = 3, seed: int = 0) -> np.ndarray:
    """(imus, components, samples): gravity on z, motion, noise, both signs."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    x = rng.normal(0.0, 0.5, (imus, components, samples))
    x += 2.0 * np.sin(2 * np.pi * 0.8 * t + np.arange(components)[:, None])
    x[:, 2] += GRAVITY
    return x


@pytest.mark.parametrize("options", [
    {},
    {"accel": True, "squared": True},
    {"squared": True},
    {"norm_min_bound": -4.0, "norm_max_bound": 6.0},
    {"accel": True, "squared": True, "norm_min_bound": -2.0, "norm_max_bound": 3.0},
    {"squared": True, "norm_min_bound": -2.0, "norm_max_bound": 3.0},
])
@pytest.mark.parametrize("window, sizes", [(148, [2] * 200), (40, [2, 3, 1, 7, 2, 5] * 30)])
def test_compatible_mode_equals_biosiglive_process_imu(options, window, sizes):
    x = imu_signal(4, sum(sizes), seed=len(options))
    reference = RealTimeProcessing(RATE, window)
    settings = ImuProcessingSettings(
        mode="biosiglive", sensor="acc" if options.get("accel") else "gyro",
        squared=options.get("squared", False), processing_window=window,
        norm_min_bound=options.get("norm_min_bound", 0.0),
        norm_max_bound=options.get("norm_max_bound", 0.0))
    ours = BiosigliveImu(RATE, 4, settings)
    edges = np.cumsum([0] + sizes)
    values = 0
    for a, b in zip(edges[:-1], edges[1:]):
        expected = reference.process_imu(x[:, :, a:b].copy(), **options)
        got = ours.process_imu(x[:, :, a:b].copy())
        assert got.shape == expected.shape and np.array_equal(got, expected), (a, b)
        values += bool(np.any(got))
    assert values > 50  # the comparison covered processed values, not only the zeros


def test_biosiglive_crashes_on_nine_components_and_ours_processes_triplets():
    x = imu_signal(2, 60, components=9)
    reference = RealTimeProcessing(RATE, 20)
    with pytest.raises(ValueError):
        for a in range(0, 60, 2):
            reference.process_imu(x[:, :, a:a + 2].copy())
    settings = ImuProcessingSettings(mode="biosiglive", processing_window=20, sensor="gyro")
    ours = BiosigliveImu(RATE, 2, settings, components=9)
    for a in range(0, 60, 2):
        out = ours.process_imu(x[:, :, a:a + 2])
    assert out.shape[:2] == (2, 9)
    np.testing.assert_allclose(out[:, :, -1], x[:, :, 40:60].mean(axis=2), rtol=1e-12)
    norms = BiosigliveImu(RATE, 2, ImuProcessingSettings(
        mode="biosiglive", processing_window=20, squared=True, sensor="gyro"), components=9)
    for a in range(0, 60, 2):
        out = norms.process_imu(x[:, :, a:a + 2])
    means = x[:, :, 40:60].mean(axis=2).reshape(2, 3, 3)
    np.testing.assert_allclose(out[:, :, -1], np.linalg.norm(means, axis=2), rtol=1e-12)


def stream(core: StreamingImu, data: np.ndarray, size: int = 3) -> np.ndarray:
    return np.concatenate([core.process(data[a:a + size]) for a in range(0, len(data), size)])


def test_streaming_known_answers():
    n = 600
    # A still accelerometer (gravity on z): the norm minus g is 0, the mean of each axis is
    # its constant value.
    still = np.tile([0.3, -0.4, np.sqrt(GRAVITY ** 2 - 0.25)], (n, 1))
    core = StreamingImu(RATE, 1, ImuProcessingSettings(sensor="acc", squared=True))
    np.testing.assert_allclose(stream(core, still), 0.0, atol=1e-12)
    axes = StreamingImu(RATE, 1, ImuProcessingSettings(sensor="acc"))
    np.testing.assert_allclose(stream(axes, still), still, rtol=1e-12)
    # A ramp through a 10-sample moving mean: the mean of the last 10 values (fewer at first).
    ramp = np.repeat(np.arange(n, dtype=float)[:, None], 3, axis=1)
    window = 10 / RATE
    mean = StreamingImu(RATE, 1, ImuProcessingSettings(sensor="gyro", window_s=window))
    expected = np.array([np.arange(max(0, i - 9), i + 1).mean() for i in range(n)])
    np.testing.assert_allclose(stream(mean, ramp)[:, 0], expected, rtol=1e-12)
    # A sine at the low-pass cut-off comes out at 1/sqrt(2) of its amplitude (Butterworth).
    t = np.arange(4000) / RATE
    sine = np.repeat(np.sin(2 * np.pi * 5.0 * t)[:, None], 3, axis=1)
    low = StreamingImu(RATE, 1, ImuProcessingSettings(sensor="gyro", window_s=0.0,
                                                      lowpass_hz=5.0, lowpass_order=4))
    out = stream(low, sine)[2000:, 0]
    assert abs(out.max() - 2 ** -0.5) < 5e-3
    # Normalisation: negative values by |min|, positive ones by max, once.
    bounds = StreamingImu(RATE, 1, ImuProcessingSettings(
        sensor="gyro", window_s=0.0, norm_min_bound=-2.0, norm_max_bound=4.0))
    got = bounds.process(np.array([[-1.0, 2.0, 0.0]]))
    assert got.tolist() == [[-0.5, 0.5, 0.0]]


def test_channel_selection_and_processor_layout():
    names = [f"{s}_{c}_{a}" for s in ("deltoid", "biceps") for c in ("acc", "gyro", "mag")
             for a in "xyz"]
    columns, imus = select_imu_channels(names, "gyro")
    assert imus == ["deltoid", "biceps"] and columns == [3, 4, 5, 12, 13, 14]
    with pytest.raises(ValueError, match="biceps lacks z"):
        select_imu_channels(names[:-4], "gyro")
    with pytest.raises(ValueError, match="no channel named"):
        select_imu_channels(["emg_1"], "acc")
    events = []
    processor = ImuProcessor(ImuProcessingSettings(sensor="gyro", squared=True),
                             notify=lambda *e: events.append(e))
    data = np.random.default_rng(1).normal(size=(4, 18))
    out = processor.step(SignalChunk(data, 0, 0.0, RATE, names, "m/s^2,rad/s,T")).output
    assert out.channel_names == ["deltoid_gyro_norm", "biceps_gyro_norm"] and out.unit == "rad/s"
    np.testing.assert_allclose(out.data[0, 1], np.linalg.norm(data[0, 12:15]))
    assert events == [("info", "emg/aux layout: 2 IMU(s) [deltoid, biceps], gyro at 148.148 Hz")]
    refused = processor.step(SignalChunk(data[:, :3], 4, 0.0, RATE, names[:3], "m/s^2"))
    assert refused.refused and "no channel named *_gyro_x" in processor.last_error


def test_settings_checks():
    with pytest.raises(ConfigError, match="go together"):
        ImuProcessingSettings(norm_max_bound=3.0)
    with pytest.raises(ConfigError, match="sensor"):
        ImuProcessingSettings(sensor="mag")
    with pytest.raises(ConfigError, match="apply to mode 'streaming'"):
        ImuProcessingSettings(mode="biosiglive", lowpass_hz=5.0)
