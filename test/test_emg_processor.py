"""The ROS-free core behind emg_processing_node, tested alone: stream continuity, MVC recording,
the channel layout learned from the stream, MVC checks against the stream, and output indices
that stay monotonic when the decimation changes at run time."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings, EnvelopeStream
from biosig_ros.processing.emg_processor import EmgProcessingSettings, EmgProcessor
from biosig_ros.processing.mvc import compute_mvc
from biosig_ros.processing.mvc_recorder import MvcRecorder, MvcRecorderSettings
from biosig_ros.processing.stream_continuity import (
    LATE, NEXT, RESTART, ContinuitySettings, StreamContinuity)
from biosig_ros.signals import SignalChunk

RATE = 2000.0


def signal(channels: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    return 1e-4 * rng.standard_normal((samples, channels)) * (1.5 + np.sin(2 * np.pi * t))[:, None]


def chunks(x: np.ndarray, names, size: int = 20, start: int = 0):
    for a in range(0, len(x) - size + 1, size):
        yield SignalChunk(x[a:a + size], start + a, (start + a) / RATE, RATE, list(names), "V")


NAMES = [f"m{i}" for i in range(4)]


def test_continuity_next_gap_late_restart():
    c = StreamContinuity(ContinuitySettings(restart_after=100))
    assert c.step(0, 20) == (NEXT, 0, None)
    assert c.step(20, 20) == (NEXT, 0, 20)
    assert c.step(60, 20) == (NEXT, 20, 40)          # a gap of 20 samples
    assert c.step(60, 20).action == LATE             # a repeat
    assert c.step(0, 20).action == LATE              # 80 behind: still late
    assert c.step(80, 20).action == NEXT
    assert c.step(-50, 20).action == RESTART         # 150 behind: a new stream
    assert c.step(-30, 20) == (NEXT, 0, -30)
    assert (c.late, c.restarts, c.gaps_total, c.missing_total) == (2, 1, 1, 20)
    assert c.stats.messages == 2  # the restarted stream's own statistics


def test_mvc_recorder_matches_compute_mvc_and_reports():
    recorder = MvcRecorder(MvcRecorderSettings(RATE, window_s=0.1))
    with pytest.raises(ValueError, match="duration"):
        recorder.start(0.0)
    recorder.start(0.05)  # 100 samples
    with pytest.raises(ValueError, match="already recording"):
        recorder.start(0.05)
    rng = np.random.default_rng(1)
    blocks = [rng.uniform(0.1, 1.0, (20, 3)) for _ in range(5)]
    done = [recorder.step(b, 20, missing=20 * (k == 2)) for k, b in enumerate(blocks)]
    assert done == [False] * 4 + [True]
    result = recorder.finish(["a", "b", "c"], {"envelope": "median"})
    assert np.array_equal(result.mvc, compute_mvc(np.concatenate(blocks), 200, "biosiglive"))
    assert result.calibration.channel_names == ["a", "b", "c"]
    assert any("longer than the recording" in n for n in result.notes)
    assert any("1 gap" in n for n in result.notes)
    assert not recorder.recording
    recorder.start(0.05)
    recorder.step(np.zeros((20, 3)), 20)
    assert "received 20 of 100" in recorder.cancel()
    recorder.start(0.01)
    recorder.step(np.zeros((20, 3)), 20)
    with pytest.raises(ValueError, match="above zero"):
        recorder.finish([], {})


def test_processor_learns_the_layout_and_equals_the_pipeline():
    x = signal(4, 2000)
    events = []
    processor = EmgProcessor(EmgProcessingSettings(), notify=lambda *e: events.append(e))
    reference = EnvelopeStream(EmgPipeline(EmgPipelineSettings(channel_count=4)), RATE)
    for c in chunks(x, NAMES):
        result = processor.step(c)
        assert np.array_equal(result.output.data, reference.step(c)[0].data)
    assert processor.layout == NAMES
    assert events == [("info", "input layout: 4 channels [m0, m1, m2, m3]")]


def test_processor_reinitialises_filters_on_a_new_layout():
    x, y = signal(4, 1000, 1), signal(6, 1000, 2)
    events = []
    processor = EmgProcessor(EmgProcessingSettings(publish_rate=100.0),
                             notify=lambda *e: events.append(e))
    outputs = [processor.step(c).output for c in chunks(x, NAMES)]
    six = [f"s{i}" for i in range(6)]
    fresh = EnvelopeStream(EmgPipeline(EmgPipelineSettings(channel_count=6), 20), RATE)
    for c in chunks(y, six, start=1000):
        out = processor.step(c).output
        expected = fresh.step(c)[0]
        assert np.array_equal(out.data, expected.data) and out.channel_names == six
        outputs.append(out)
    assert events[-1][0] == "warning" and "changed from 4 channels" in events[-1][1]
    assert "6 channels [s0, s1, s2, s3, s4, s5]" in events[-1][1]
    assert processor.layout_changes == 1
    # The output indices go on across the new layout.
    assert [o.first_sample_index for o in outputs] == list(range(100))


def test_fixed_channel_count_refuses_another_layout():
    processor = EmgProcessor(EmgProcessingSettings(channel_count=4))
    x = signal(3, 40)
    result = processor.step(next(chunks(x, ["a", "b", "c"])))
    assert result.refused and "3 channels, parameter 'channel_count' is 4" in processor.last_error


def test_mvc_is_checked_against_the_stream():
    events = []
    processor = EmgProcessor(EmgProcessingSettings(), mvc=[1e-4] * 3, mvc_source="file f.yaml",
                             notify=lambda *e: events.append(e))
    x = signal(4, 200)
    out = processor.step(next(chunks(x, NAMES))).output
    assert out.unit == "V" and processor.unit_is_volts
    assert processor.mvc_problem == ("MVC (file f.yaml) has 3 channels, the input has 4: not "
                                     "applied, publishing V")
    assert ("error", processor.mvc_problem) in events
    with pytest.raises(ConfigError, match="3 values for 4 channels"):
        processor.set_mvc([1e-4] * 3, "parameter mvc")
    processor.set_mvc([1e-4] * 4, "parameter mvc")
    assert processor.mvc_problem == "" and not processor.unit_is_volts
    assert processor.step(list(chunks(x, NAMES))[1]).output.unit == ""
    # Calibrated on other names: applied column by column, reported.
    processor.set_mvc([1e-4] * 4, "calibration", ["a", "b", "c", "d"])
    assert "MVC calibrated on channels ['a', 'b', 'c', 'd']" in processor.name_warning


@pytest.mark.parametrize("rates", [(0.0, 100.0, 0.0), (100.0, 200.0, 50.0), (50.0, 0.0, 100.0)])
def test_output_indices_stay_monotonic_when_publish_rate_changes(rates):
    x = signal(2, 6000, 3)
    settings = EmgProcessingSettings(publish_rate=rates[0])
    processor = EmgProcessor(settings)
    full = EnvelopeStream(EmgPipeline(EmgPipelineSettings(channel_count=2)), RATE)
    indices, checked = [], 0
    for k, c in enumerate(chunks(x, ["a", "b"], size=27)):
        if k in (70, 140):
            rate = rates[1 if k == 70 else 2]
            settings = dataclasses.replace(settings, publish_rate=rate)
            processor.change(settings, ["publish_rate"])
        out = processor.step(c).output
        every = full.step(c)[0]
        if out is None:
            continue
        indices += range(out.first_sample_index, out.first_sample_index + out.sample_count)
        # Each output sample is the envelope at the input sample its stamp names.
        for j in range(out.sample_count):
            position = round((out.stamp + j / out.sample_rate - c.stamp) * RATE)
            assert np.array_equal(out.data[j], every.data[position])
            checked += 1
    assert indices == list(range(len(indices))) and checked == len(indices) > 100


def test_rms_envelope_is_faster_than_the_median_and_no_noisier():
    """The envelope recommended for control (issue #14): RMS over 100 ms reaches half of a step
    within 40 ms, where the 100 ms median takes about 70, at an SNR no worse than the median's."""
    from biosig_ros.processing.emg_synthetic import envelope_figures, synthetic_step_emg

    x, onsets = synthetic_step_emg(4, 8, RATE, seed=5)
    figures = {}
    for envelope in ("median", "rms"):
        core = EmgPipeline(EmgPipelineSettings(channel_count=4, envelope=envelope))
        figures[envelope] = envelope_figures(core.process(x).values, onsets, RATE)
    (median_delay, median_snr), (rms_delay, rms_snr) = figures["median"], figures["rms"]
    assert 60 <= median_delay <= 80 and rms_delay <= 40, figures
    assert rms_snr >= median_snr, figures


def test_a_new_layout_cancels_a_calibration_with_its_reason():
    processor = EmgProcessor(EmgProcessingSettings())
    x = signal(4, 400)
    processor.step(next(chunks(x, NAMES)))
    processor.start_calibration(0.1)
    processor.step(next(chunks(x[:, :3], ["a", "b", "c"], start=20)))
    assert not processor.recorder.recording
    assert processor.calibration_stopped == "the input's channel layout changed during the recording"
