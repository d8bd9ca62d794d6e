"""Streaming EMG stages and pipeline against scipy/numpy on whole signals, settings checks,
chunk-level indices and stamps, offline helpers, MVC file handling. No ROS."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import signal

from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import load_bio
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.emg_filters import (
    BandPass, BandPassSettings, Centring, LowPass, LowPassSettings, MovingMean, MovingMedian,
    MovingRms, WindowSettings, sosfilt_inplace)
from biosig_ros.processing.emg_offline import (
    bandpass_zero_phase, causal_envelope, centred_moving_mean, centred_moving_median,
    envelope_offline, lowpass_zero_phase)
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings, EnvelopeStream
from biosig_ros.processing.mvc import MvcCalibration, check_mvc, compute_mvc
from biosig_ros.signals import SignalChunk

RATE = 2000.0


def random_chunks(total: int, rng, largest: int = 90):
    """Chunk boundaries with empty, single-sample, long (> window/2, > 32) and odd chunks."""
    edges, i = [0], 0
    while i < total:
        step = rng.choice([0, 1, 2, 7, 20, 27, 33, largest, rng.integers(1, largest)])
        i = min(total, i + int(step))
        edges.append(i)
    return list(zip(edges[:-1], edges[1:]))


def stream(stage_step, x: np.ndarray, rng, largest: int = 90) -> np.ndarray:
    """Feed x (channels x samples) chunk by chunk, return the concatenated outputs."""
    outputs = [stage_step(np.ascontiguousarray(x[:, a:b])) for a, b in random_chunks(
        x.shape[1], rng, largest)]
    return np.concatenate(outputs, axis=1)


def window_reference(x: np.ndarray, window: int, statistic) -> np.ndarray:
    """statistic over the last `window` samples (fewer at the start), sample by sample."""
    out = np.empty_like(x)
    for i in range(x.shape[1]):
        out[:, i] = statistic(x[:, max(0, i - window + 1):i + 1], axis=1)
    return out


@pytest.fixture(scope="module")
def emg() -> np.ndarray:
    return load_bio(resolve_data_path("data/abd.bio"))["emg"]  # (10, 14000) V


def synthetic(channels: int, samples: int, seed: int) -> np.ndarray:
    """Offset + 50 Hz hum + noise bursts + exact ties (a dead channel, quantised values)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    x = 2e-4 * rng.standard_normal((channels, samples)) * (1 + np.sin(2 * np.pi * 0.7 * t))
    x += 5e-5 * np.sin(2 * np.pi * 50 * t) + rng.uniform(-1e-3, 1e-3, (channels, 1))
    x[0] = 0.0
    x[1] = np.round(x[1], 4)
    return x


# --- filters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [2, 4, 5])
def test_bandpass_streaming_equals_sosfilt_of_whole_signal(emg, order):
    rng = np.random.default_rng(order)
    settings = BandPassSettings(RATE, 10.0, 425.0, order)
    expected = signal.sosfilt(signal.butter(order, [10, 425], "bandpass", fs=RATE, output="sos"),
                              emg, axis=1)
    for _ in range(3):
        got = stream(BandPass(settings, 10).step, emg, rng)
        assert np.array_equal(got, expected)  # same kernel, same order of operations


def test_lowpass_streaming_equals_sosfilt_of_whole_signal():
    rng = np.random.default_rng(3)
    x = np.abs(synthetic(4, 6000, 3))
    expected = signal.sosfilt(signal.butter(4, 5, "lowpass", fs=RATE, output="sos"), x, axis=1)
    got = stream(LowPass(LowPassSettings(RATE, 5.0, 4), 4).step, x, rng)
    assert np.array_equal(got, expected)


def test_sosfilt_inplace_matches_public_sosfilt_with_state():
    rng = np.random.default_rng(4)
    sos = BandPassSettings(RATE).sos()
    x = rng.standard_normal((3, 50))
    zi = rng.standard_normal((3, sos.shape[0], 2))
    y_ref, zf_ref = signal.sosfilt(sos, x, axis=1, zi=zi.transpose(1, 0, 2))
    y, zf = x.copy(), zi.copy()
    sosfilt_inplace(sos, y, zf)
    assert np.array_equal(y, y_ref) and np.array_equal(zf, zf_ref.transpose(1, 0, 2))


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5, 64, 65, 200, 201])
def test_moving_median_equals_numpy_median_of_each_window(window):
    rng = np.random.default_rng(window)
    x = synthetic(3, 1500, window)
    expected = window_reference(x, window, np.median)
    for _ in range(2):
        got = stream(MovingMedian(WindowSettings(window), 3).step, x, rng, largest=window + 40)
        assert np.array_equal(got, expected)


def test_moving_median_at_chosen_positions_only():
    rng = np.random.default_rng(5)
    x = synthetic(4, 3000, 5)
    expected = window_reference(x, 200, np.median)
    median = MovingMedian(WindowSettings(200), 4)
    got, chosen = [], []
    for a, b in random_chunks(3000, rng):
        positions = np.flatnonzero((np.arange(a, b) + 1) % 20 == 0)  # every 20th sample
        got.append(median.step(np.ascontiguousarray(x[:, a:b]), positions))
        chosen.extend(a + positions)
    assert chosen == list(range(19, 3000, 20))
    assert np.array_equal(np.concatenate(got, axis=1), expected[:, chosen])


def test_moving_median_after_reset_equals_a_fresh_one():
    rng = np.random.default_rng(8)
    x = synthetic(3, 900, 8)
    used = MovingMedian(WindowSettings(64), 3)
    stream(used.step, rng.standard_normal((3, 500)) * 5, rng)  # other values, then reset
    used.reset()
    assert np.array_equal(stream(used.step, x, rng), window_reference(x, 64, np.median))


def test_moving_median_refuses_nan_and_keeps_its_state():
    median = MovingMedian(WindowSettings(5), 1)
    median.step(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="NaN"):
        median.step(np.array([[4.0, np.nan]]))
    assert median.step(np.array([[10.0]]))[0, 0] == 2.5  # median of 1, 2, 3, 10


@pytest.mark.parametrize("window", [1, 3, 200, 2000])
def test_moving_mean_and_centring_equal_window_means(window):
    rng = np.random.default_rng(window)
    x = synthetic(3, 5000, window)
    expected = window_reference(x, window, np.mean)
    got = stream(MovingMean(WindowSettings(window), 3).step, x, rng)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    centred = stream(Centring(WindowSettings(window), 3).step, x.copy(), rng)
    np.testing.assert_allclose(centred, x - expected, rtol=0, atol=1e-15)


def test_moving_mean_does_not_drift_over_a_long_stream():
    # 30 minutes at 2 kHz of a large offset: the running sum is re-anchored every window.
    rng = np.random.default_rng(6)
    mean = MovingMean(WindowSettings(200), 2)
    chunk = np.empty((2, 2000))
    for _ in range(1800):
        chunk[...] = 1.0 + 1e-3 * rng.standard_normal((2, 2000))
        got = mean.step(chunk.copy())
    np.testing.assert_allclose(got[:, -1], chunk[:, -200:].mean(axis=1), rtol=1e-14)


def test_state_does_not_grow_with_the_stream():
    rng = np.random.default_rng(7)
    median = MovingMedian(WindowSettings(200), 2)
    mean = MovingMean(WindowSettings(200), 2)
    sizes = []
    for step in range(3000):
        x = rng.standard_normal((2, int(rng.integers(1, 60))))
        median.step(x.copy())
        mean.step(x.copy())
        if step in (500, 2999):
            sizes.append(tuple(a.shape for a in median._state + mean._state))
    assert sizes[0] == sizes[1] == ((2, 101),) * 4 + ((2, 200), (2, 200), (2,))


# --- the pipeline ------------------------------------------------------------------------------

def pipeline_reference(x: np.ndarray, s: EmgPipelineSettings) -> np.ndarray:
    """The chain applied offline, causally, to the whole signal (channels x samples), from
    scipy/numpy primitives."""
    y = x - window_reference(x, s.centring_window, np.mean) if s.centring else x
    if s.bandpass:
        y = signal.sosfilt(signal.butter(s.bandpass_order, [s.bandpass_low_hz, s.bandpass_high_hz],
                                         "bandpass", fs=s.sample_rate, output="sos"), y, axis=1)
    if s.rectify:
        y = np.abs(y)
    if s.envelope == "median":
        y = window_reference(y, s.envelope_window, np.median)
    elif s.envelope == "mean":
        y = window_reference(y, s.envelope_window, np.mean)
    elif s.envelope == "rms":
        y = np.sqrt(window_reference(y * y, s.envelope_window, np.mean))
    elif s.envelope == "lowpass":
        y = signal.sosfilt(signal.butter(s.lowpass_order, s.lowpass_hz, "lowpass",
                                         fs=s.sample_rate, output="sos"), y, axis=1)
    return y


@pytest.mark.parametrize("changes", [
    {},
    {"centring": True},
    {"envelope": "mean", "centring": True, "centring_window": 500},
    {"envelope": "rms", "envelope_window": 200},
    {"envelope": "rms", "rectify": False, "envelope_window": 37},
    {"envelope": "lowpass", "bandpass_order": 2},
    {"envelope": "none", "bandpass_order": 4},
    {"bandpass": False, "centring": True, "envelope_window": 51},
])
def test_pipeline_streaming_equals_offline_causal_chain(emg, changes):
    s = EmgPipelineSettings(**changes)
    x = emg[:, :8000]
    expected = pipeline_reference(x, s)
    rng = np.random.default_rng(len(changes))
    pipeline = EmgPipeline(s)
    got = []
    for a, b in random_chunks(x.shape[1], rng):
        got.append(pipeline.process(x[:, a:b].T, a).values)
    got = np.concatenate(got, axis=0).T
    # Only the centring mean is summed differently (running sum vs numpy's pairwise sum).
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("changes", [
    {}, {"centring": True, "centring_window": 300}, {"envelope": "mean", "envelope_window": 64},
    {"envelope": "rms", "envelope_window": 64}, {"envelope": "lowpass"}, {"envelope": "none", "rectify": False, "bandpass_order": 2},
])
def test_compiled_chain_equals_the_stage_classes_in_turn(emg, changes):
    # The chain kernel and the stages (the band-pass through scipy's own kernel) agree bit for
    # bit: the chain's IIR sections do scipy's arithmetic in scipy's order.
    s = EmgPipelineSettings(**changes)
    x = np.ascontiguousarray(emg[:, :5000])
    y = Centring(WindowSettings(s.centring_window), 10).step(x.copy()) if s.centring else x.copy()
    y = BandPass(BandPassSettings(RATE, s.bandpass_low_hz, s.bandpass_high_hz,
                                  s.bandpass_order), 10).step(y)
    y = np.abs(y) if s.rectify else y
    envelope = {"median": lambda: MovingMedian(WindowSettings(s.envelope_window), 10).step(y),
                "mean": lambda: MovingMean(WindowSettings(s.envelope_window), 10).step(y),
                "rms": lambda: MovingRms(WindowSettings(s.envelope_window), 10).step(y),
                "lowpass": lambda: LowPass(LowPassSettings(RATE), 10).step(y.copy()),
                "none": lambda: y}[s.envelope]()
    pipeline = EmgPipeline(s)
    got = np.concatenate([pipeline.process(x[:, a:b].T, a).values for a, b in random_chunks(
        x.shape[1], np.random.default_rng(9))]).T
    assert np.array_equal(got, envelope)


def test_envelope_stream_indices_stamps_names_and_mvc(emg):
    mvc = list(np.linspace(1e-4, 1e-3, 10))
    names = [f"m{i}" for i in range(10)]
    settings = EmgPipelineSettings()
    stream_full = EnvelopeStream(EmgPipeline(settings), RATE)
    stream_dec = EnvelopeStream(EmgPipeline(settings, decimation=20), RATE, mvc)
    start = 1_700_000_000.0
    first = 400  # a stream that did not start at zero
    full, decimated = [], []
    for a in range(0, 2000, 27):  # 27-sample chunks (Trigno frames): outputs fall mid-chunk
        data = emg[:, a:a + 27].T
        chunk = SignalChunk(data, first + a, start + a / RATE, RATE, names, "V")
        out, raw = stream_full.step(chunk)
        assert out.first_sample_index == chunk.first_sample_index and out.stamp == chunk.stamp
        assert out.channel_names == names and out.unit == "V" and out.sample_rate == RATE
        full.append(out.data)
        out_dec, raw_dec = stream_dec.step(chunk)
        if out_dec is not None:
            decimated.append(out_dec)
    full = np.concatenate(full)
    for out in decimated:
        assert out.sample_rate == 100.0 and out.unit == "" and out.channel_names == names
        for k in range(out.sample_count):
            index = (out.first_sample_index + k) * 20 + 19  # input sample of output sample
            assert out.stamp + k / 100.0 == pytest.approx(start + (index - first) / RATE, abs=1e-6)
            np.testing.assert_array_equal(out.data[k], full[index - first] / np.array(mvc))
    indices = [o.first_sample_index + k for o in decimated for k in range(o.sample_count)]
    assert indices == list(range(first // 20, (first + len(full)) // 20))


def test_refused_chunks_leave_the_state_untouched(emg):
    good = EnvelopeStream(EmgPipeline(EmgPipelineSettings()), RATE)
    tested = EnvelopeStream(EmgPipeline(EmgPipelineSettings()), RATE)
    for a in range(0, 1000, 20):
        chunk = SignalChunk(emg[:, a:a + 20].T, a, a / RATE, RATE, [], "V")
        if a == 500:
            bad = chunk.data.copy()
            bad[3, 2] = np.nan
            cases = [(SignalChunk(bad, a, 0.0, RATE, [], "V"), "non-finite"),
                     (SignalChunk(chunk.data[:, :9], a, 0.0, RATE, [], "V"), "samples x 10"),
                     (SignalChunk(chunk.data, a, 0.0, 1925.926, [], "V"), "1925.93 Hz")]
            for refused, text in cases:
                with pytest.raises(ValueError, match=text):
                    tested.step(refused)
        expected, _ = good.step(chunk)
        got, _ = tested.step(chunk)
        assert np.array_equal(got.data, expected.data)


@pytest.mark.parametrize("changes, name", [
    ({"bandpass_high_hz": 1000.0}, "bandpass_high_hz"),
    ({"bandpass_high_hz": 1500.0}, "Nyquist"),
    ({"bandpass_low_hz": 0.0}, "bandpass_low_hz"),
    ({"bandpass_low_hz": 500.0}, "bandpass_low_hz"),
    ({"envelope": "lowpass", "lowpass_hz": 1000.0}, "lowpass_hz"),
    ({"bandpass_order": 0}, "bandpass_order"),
    ({"envelope": "rmss"}, "envelope"),
    ({"envelope_window": 0}, "envelope_window"),
    ({"sample_rate": -1.0}, "sample_rate"),
    ({"mvc": [1e-3] * 9}, "9 values for 10 channels"),
    ({"mvc": [1e-3] * 9 + [0.0]}, "above zero"),
    ({"mvc": [1e-3] * 9 + [-2e-3]}, "channel(s) [9]"),
    ({"mvc": [1e-3] * 9 + [float("nan")]}, "mvc"),
])
def test_invalid_pipeline_settings_name_the_parameter(changes, name):
    with pytest.raises(ConfigError, match=name.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        EmgPipelineSettings(**changes)


def test_stage_settings_checks():
    with pytest.raises(ConfigError, match="high_hz"):
        BandPassSettings(1000.0, 10.0, 500.0)
    with pytest.raises(ConfigError, match="cutoff_hz"):
        LowPassSettings(100.0, 60.0)
    with pytest.raises(ConfigError, match="window"):
        WindowSettings(0)


# --- offline helpers ---------------------------------------------------------------------------

def test_zero_phase_helpers(emg):
    x = emg.T
    sos = signal.butter(5, [10, 425], "bandpass", fs=RATE, output="sos")
    assert np.array_equal(bandpass_zero_phase(x, RATE, order=5), signal.sosfiltfilt(sos, x, axis=0))
    sos = signal.butter(2, 6, "lowpass", fs=RATE, output="sos")
    assert np.array_equal(lowpass_zero_phase(x, RATE, 6.0, 2), signal.sosfiltfilt(sos, x, axis=0))
    # Zero phase: a 2 Hz sine through the 5 Hz low-pass comes out without delay.
    t = np.arange(8000) / RATE
    sine = np.sin(2 * np.pi * 2 * t)
    out = lowpass_zero_phase(sine, RATE)
    lags = range(-50, 51)
    match = [np.dot(out[2000 + lag:6000 + lag], sine[2000:6000]) for lag in lags]
    assert lags[int(np.argmax(match))] == 0


@pytest.mark.parametrize("window", [1, 4, 5, 200])
def test_centred_moving_windows(window):
    x = synthetic(2, 700, window).T
    after = window // 2
    for function, statistic in ((centred_moving_median, np.median),
                                (centred_moving_mean, np.mean)):
        got = function(x, window)
        expected = np.array([statistic(x[max(0, i - (window - 1 - after)):i + after + 1], axis=0)
                             for i in range(len(x))])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


def test_envelope_offline_and_causal_envelope(emg):
    settings = EmgPipelineSettings(mvc=[1e-4] * 10, centring=True)
    causal = causal_envelope(emg.T, settings)
    reference = pipeline_reference(emg, settings).T / 1e-4
    np.testing.assert_allclose(causal, reference, rtol=1e-9, atol=1e-12 * reference.max())
    offline = envelope_offline(emg.T, settings)
    x = emg.T - emg.T.mean(axis=0)
    x = np.abs(signal.sosfiltfilt(signal.butter(5, [10, 425], "bandpass", fs=RATE,
                                                output="sos"), x, axis=0))
    np.testing.assert_array_equal(offline, centred_moving_median(x, 200) / 1e-4)
    # The causal envelope lags the zero-phase one by about half the window (100 samples).
    lags = np.arange(0, 301, 10)
    errors = [np.abs(causal[lag:, 0] - offline[:len(offline) - lag, 0]).mean() for lag in lags]
    assert 50 <= lags[int(np.argmin(errors))] <= 150


# --- MVC values and files ----------------------------------------------------------------------

def test_compute_mvc_methods():
    rng = np.random.default_rng(8)
    envelope = rng.random((5000, 4))
    top = -np.sort(-envelope, axis=0)
    np.testing.assert_array_equal(compute_mvc(envelope, 1000, "top_window_median"),
                                  np.median(top[:1000], axis=0))
    # biosiglive's: every value repeated 4 times (once per channel): the median of the
    # 1000 largest of those is the mean of the 125th and 126th largest samples.
    np.testing.assert_array_equal(compute_mvc(envelope, 1000, "biosiglive"),
                                  (top[124] + top[125]) / 2)
    with pytest.raises(ConfigError, match="mvc_method"):
        compute_mvc(envelope, 1000, "max")


def test_mvc_yaml_round_trip_and_errors(tmp_path):
    calibration = MvcCalibration(channel_names=["a", "b"], mvc=[2e-4, 3.5e-4], window_samples=2000,
                                 envelope_rate=2000.0, duration_s=5.0)
    path = calibration.save(tmp_path / "sub" / "mvc.yaml")
    loaded = MvcCalibration.load(path)
    assert loaded == calibration
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["mvc"] == [2e-4, 3.5e-4]
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary left behind
    bad = tmp_path / "bad.yaml"
    for text, message in (("mvc: [1.0, 0.0]\n", "above zero"),
                          ("mvc: [1.0, -1.0]\nchannel_names: [a, b]\n", "above zero"),
                          ("mvc: [1.0]\nchannel_names: [a, b]\n", "channel names"),
                          ("channel_names: [a]\n", "no 'mvc'"),
                          ("mvc: [1.0, [\n", "not valid YAML")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            MvcCalibration.load(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        MvcCalibration.load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="3 values for 2 channels"):
        check_mvc([1, 2, 3], 2)
