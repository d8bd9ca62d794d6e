"""The biosiglive-compatible mode against the real biosiglive 2.0.3 (installed in the venv), on
data/abd.bio and on synthetic signals: same arrays at every call, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from biosiglive import OfflineProcessing, RealTimeProcessing
from biosiglive.processing.data_processing import GenericProcessing
from scipy.signal import butter

from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import load_bio
from biosig_ros.paths import resolve_data_path
from biosig_ros.processing.biosiglive_compat import (
    BiosigliveRealTime, BiosigliveSettings, compute_mvc_from_raw, offline_process_emg)
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings
from biosig_ros.processing.mvc import biosiglive_compute_mvc, compute_mvc

MVC = [1e-4 * (i + 1) for i in range(10)]


@pytest.fixture(scope="module")
def emg() -> np.ndarray:
    return load_bio(resolve_data_path("data/abd.bio"))["emg"]  # (10, 14000) V


def synthetic(channels: int, samples: int, seed: int) -> np.ndarray:
    """Electrode offsets, 50 Hz hum, contractions (bursts of noise), a flat channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 2000
    bursts = 1 + 20 * (np.sin(2 * np.pi * 0.5 * t) > 0.6)
    x = 1e-5 * rng.standard_normal((channels, samples)) * bursts
    x += 3e-5 * np.sin(2 * np.pi * 50 * t) + rng.uniform(-1e-3, 1e-3, (channels, 1))
    x[-1] = 2e-4
    return x


def fix_lowpass(monkeypatch) -> None:
    """biosiglive with its low-pass crash fixed (a scalar cut-off instead of [cut-off])."""
    def butter_lowpass(lowcut, fs, order=4):
        return butter(order, lowcut / (0.5 * fs), btype="low")
    monkeypatch.setattr(GenericProcessing, "_butter_lowpass", staticmethod(butter_lowpass))


def compare_calls(data: np.ndarray, chunks, rate: int = 2000, window: int | None = None,
                  **kwargs) -> int:
    """Feed the same chunks to biosiglive and to the compatible mode; every returned array must
    be identical. Returns how many calls processed a full window."""
    reference = RealTimeProcessing(rate, window)
    settings = {k: v for k, v in kwargs.items() if k != "mvc_list"}
    if "mvc_list" in kwargs:
        settings["mvc_list"] = list(kwargs["mvc_list"])
    ours = BiosigliveRealTime(BiosigliveSettings(
        data_rate=rate, channel_count=data.shape[0], processing_window=window or 0, **settings))
    processed = 0
    for a, b in chunks:
        expected = reference.process_emg(data[:, a:b], **kwargs)
        got = ours.process_emg(data[:, a:b])
        assert got.shape == expected.shape and np.array_equal(got, expected), (a, b)
        processed += not ours.filling and np.any(got)
    return processed


def regular(total: int, size: int):
    return [(a, min(total, a + size)) for a in range(0, total, size)]


@pytest.mark.parametrize("kwargs", [
    {},
    {"normalization": True, "mvc_list": MVC},
    {"centering": False},
    {"band_pass_filter": False},
    {"absolute_value": False, "moving_average": False},
    {"moving_average": False},
    {"moving_average_window": 100, "bpf_lcut": 20, "bpf_hcut": 300},
])
def test_identical_to_biosiglive_on_abd_bio(emg, kwargs):
    calls = compare_calls(emg, regular(14000, 20), **kwargs)
    assert calls == 14000 // 20 - 100  # every call after the first second processes a window


def test_identical_with_trigno_frames_variable_chunks_and_a_short_window(emg):
    compare_calls(emg, regular(14000, 27), normalization=True, mvc_list=MVC)
    rng = np.random.default_rng(1)
    edges = np.cumsum(rng.integers(1, 60, 500))
    chunks = [(int(a), int(b)) for a, b in zip(np.r_[0, edges[:-1]], edges) if b <= 14000]
    assert compare_calls(emg, chunks, window=500, moving_average_window=150) > 300


@pytest.mark.parametrize("seed", [0, 1])
def test_identical_to_biosiglive_on_synthetic_signals(seed):
    x = synthetic(16, 8000, seed)
    compare_calls(x, regular(8000, 20))
    compare_calls(x, regular(8000, 20), window=400, centering=False)


def test_lowpass_mode_crashes_in_biosiglive_and_matches_it_once_fixed(emg, monkeypatch):
    broken = RealTimeProcessing(2000)
    with pytest.raises(TypeError):
        for a, b in regular(4000, 20):
            broken.process_emg(emg[:, a:b], moving_average=False, low_pass_filter=True)
    fix_lowpass(monkeypatch)
    compare_calls(emg, regular(6000, 20), moving_average=False, low_pass_filter=True)
    compare_calls(emg, regular(6000, 20), moving_average=False, low_pass_filter=True,
                  lpf_lcut=8, lp_butter_order=2, normalization=True, mvc_list=MVC)


def test_process_gives_the_new_value_of_each_call(emg):
    reference = RealTimeProcessing(2000)
    ours = BiosigliveRealTime(BiosigliveSettings())
    outputs = []
    for a, b in regular(6000, 20):
        expected = reference.process_emg(emg[:, a:b])
        result = ours.process(emg[:, a:b].T, a)
        if b <= 2000:  # the window is filling: biosiglive returns zeros, nothing to publish
            assert len(result.positions) == 0 and not expected.any()
            continue
        assert list(result.positions) == [19] and result.decimation == 20
        assert np.array_equal(result.values, expected[:, -1:].T)
        outputs.append(result.values[0])
    assert len(outputs) == 200
    lowpass = BiosigliveRealTime(BiosigliveSettings(moving_average=False, low_pass_filter=True))
    for a, b in regular(2040, 20):
        result = lowpass.process(emg[:, a:b].T, a)
    assert list(result.positions) == list(range(20)) and result.decimation == 1
    assert result.values.shape == (20, 10)


def test_streaming_core_stays_close_to_biosiglive(emg):
    """The documented difference: the streaming core (continuous filter, no centring) against
    biosiglive's re-filtered window, one value per 20-sample chunk after the first second."""
    reference = RealTimeProcessing(2000)
    core = EmgPipeline(EmgPipelineSettings(), decimation=20)
    differences = []
    for a, b in regular(14000, 20):
        expected = reference.process_emg(emg[:, a:b])[:, -1]
        got = core.process(emg[:, a:b].T, a).values[0]
        if b > 2000:
            differences.append(np.abs(got - expected) / expected)
    differences = np.array(differences)
    assert np.median(differences) < 0.005 and differences.max() < 0.05


def test_refusals():
    with pytest.raises(ConfigError, match="larger than the buffer 'processing_window'"):
        BiosigliveSettings(processing_window=150, moving_average_window=200)
    with pytest.raises(ConfigError, match="exclusive"):
        BiosigliveSettings(low_pass_filter=True)
    with pytest.raises(ConfigError, match="bpf_hcut"):
        BiosigliveSettings(bpf_hcut=1000)
    with pytest.raises(ConfigError, match="lpf_lcut"):
        BiosigliveSettings(moving_average=False, low_pass_filter=True, lpf_lcut=1200)
    with pytest.raises(ConfigError, match="mvc_list"):
        BiosigliveSettings(normalization=True)
    with pytest.raises(ConfigError, match="9 values for 10 channels"):
        BiosigliveSettings(normalization=True, mvc_list=MVC[:9])
    with pytest.raises(ConfigError, match="above zero"):
        BiosigliveSettings(normalization=True, mvc_list=MVC[:9] + [0.0])
    core = BiosigliveRealTime(BiosigliveSettings(processing_window=100, moving_average_window=50))
    with pytest.raises(ValueError, match="not shorter than processing_window"):
        core.process_emg(np.zeros((10, 100)))
    with pytest.raises(ValueError, match="empty"):
        core.process_emg(np.zeros((10, 0)))


# --- offline processing and MVC ----------------------------------------------------------------

def test_offline_processing_identical_to_biosiglive(emg, monkeypatch):
    fix_lowpass(monkeypatch)
    assert np.array_equal(offline_process_emg(emg, 2000), OfflineProcessing(2000).process_emg(emg))
    assert np.array_equal(
        offline_process_emg(emg, 2000, moving_average=False, low_pass_filter=True),
        OfflineProcessing(2000).process_emg(emg, moving_average=False, low_pass_filter=True))


@pytest.mark.parametrize("nb_muscles, window", [(1, 2000), (10, 2000), (4, 333), (10, 50000)])
def test_compute_mvc_identical_to_biosiglive(emg, nb_muscles, window):
    trials = np.abs(emg[:nb_muscles])
    expected = OfflineProcessing.compute_mvc(nb_muscles, trials, window)
    assert np.array_equal(biosiglive_compute_mvc(nb_muscles, trials, window), expected)
    assert np.array_equal(compute_mvc(trials.T, window, "biosiglive"), expected)


def test_compute_mvc_from_raw_is_what_compute_mvc_reports(emg):
    # ComputeMvc with its default processing: each trial through OfflineProcessing.process_emg,
    # the concatenation through it again, then compute_mvc (mvc_windows = 2000).
    processing = OfflineProcessing()
    trials = [emg[:, :6000], emg[:, 6000:]]

    def process(data):
        return processing.process_emg(data, data_rate=2000, moving_average=True,
                                      low_pass_filter=False)

    twice = process(np.concatenate([process(t) for t in trials], axis=1))
    expected = OfflineProcessing.compute_mvc(10, twice, 2000)
    assert np.array_equal(compute_mvc_from_raw(trials, 2000, 2000), expected)
