"""EMG processing of whole recordings (after the experiment), zero phase.

On a recording the future is known, so the filters can run forward and backward
(scipy.signal.sosfiltfilt): no delay between EMG and envelope, at the price of the squared
magnitude response (each cut-off is at -6 dB instead of -3 dB, the slopes are twice as steep).
Moving windows are centred on their sample. Arrays are samples x channels (pass `emg.T` for a
biosiglive .bio array, which is channels x samples) unless `axis` says otherwise.
envelope_offline follows the same EmgPipelineSettings as the streaming node; causal_envelope
gives what the node would have published for the same recording.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from biosig_ros.processing.emg_filters import BandPassSettings, LowPassSettings, MovingMedian, \
    WindowSettings, check_count
from biosig_ros.processing.emg_pipeline import EmgPipeline, EmgPipelineSettings


def bandpass_zero_phase(data: np.ndarray, sample_rate: float, low_hz: float = 10.0,
                        high_hz: float = 425.0, order: int = 4, axis: int = 0) -> np.ndarray:
    """Butterworth band-pass run forward and backward."""
    sos = BandPassSettings(sample_rate, low_hz, high_hz, order).sos()
    return signal.sosfiltfilt(sos, np.asarray(data, dtype=np.float64), axis=axis)


def lowpass_zero_phase(data: np.ndarray, sample_rate: float, cutoff_hz: float = 5.0,
                       order: int = 4, axis: int = 0) -> np.ndarray:
    """Butterworth low-pass run forward and backward."""
    sos = LowPassSettings(sample_rate, cutoff_hz, order).sos()
    return signal.sosfiltfilt(sos, np.asarray(data, dtype=np.float64), axis=axis)


def centred_moving_mean(data: np.ndarray, window: int, axis: int = 0) -> np.ndarray:
    """Mean over `window` samples centred on each sample (window // 2 after it, the rest
    before), over fewer samples at both ends of the recording."""
    check_count("window", window)
    x = np.moveaxis(np.asarray(data, dtype=np.float64), axis, 0)
    n = x.shape[0]
    after = window // 2
    index = np.arange(n)
    first = np.maximum(index - (window - 1 - after), 0)
    last = np.minimum(index + after, n - 1)
    sums = np.concatenate((np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)), axis=0)
    shape = (-1,) + (1,) * (x.ndim - 1)
    mean = (sums[last + 1] - sums[first]) / (last - first + 1).reshape(shape)
    return np.moveaxis(mean, 0, axis)


def centred_moving_median(data: np.ndarray, window: int, axis: int = 0) -> np.ndarray:
    """Median over `window` samples centred like centred_moving_mean."""
    check_count("window", window)
    x = np.moveaxis(np.asarray(data, dtype=np.float64), axis, 0)
    flat = x.reshape(x.shape[0], -1)
    n = flat.shape[0]
    after = min(window // 2, n)
    # A causal median (growing window at the start) read `after` samples late is the centred
    # one; the last `after` windows run past the end and shrink.
    causal = MovingMedian(WindowSettings(window), flat.shape[1]).step(np.ascontiguousarray(flat.T))
    result = np.empty_like(flat)
    result[:n - after] = causal[:, after:].T
    for i in range(n - after, n):
        result[i] = np.median(flat[max(0, i - (window - 1 - window // 2)):], axis=0)
    return np.moveaxis(result.reshape(x.shape), 0, axis)


def envelope_offline(data: np.ndarray, settings: EmgPipelineSettings) -> np.ndarray:
    """The envelope of a whole recording (samples x channels, V) with the pipeline's settings,
    zero phase: centring on the recording's mean, forward-backward band-pass, rectification,
    forward-backward low-pass or centred moving median/mean, then the MVC."""
    s = settings
    x = np.asarray(data, dtype=np.float64)
    if s.centring:
        x = x - x.mean(axis=0)
    if s.bandpass:
        x = bandpass_zero_phase(x, s.sample_rate, s.bandpass_low_hz, s.bandpass_high_hz,
                                s.bandpass_order)
    if s.rectify:
        x = np.abs(x)
    if s.envelope == "lowpass":
        x = lowpass_zero_phase(x, s.sample_rate, s.lowpass_hz, s.lowpass_order)
    elif s.envelope == "mean":
        x = centred_moving_mean(x, s.envelope_window)
    elif s.envelope == "median":
        x = centred_moving_median(x, s.envelope_window)
    if s.mvc:
        x = x / np.asarray(s.mvc, dtype=np.float64)
    return x


def causal_envelope(data: np.ndarray, settings: EmgPipelineSettings) -> np.ndarray:
    """What the streaming pipeline publishes for this recording (samples x channels), MVC
    applied: for comparing a live session with the offline envelope."""
    envelope = EmgPipeline(settings).process(np.asarray(data, dtype=np.float64)).values
    if settings.mvc:
        envelope = envelope / np.asarray(settings.mvc, dtype=np.float64)
    return envelope
