"""Synthetic EMG with steps of amplitude, and the two figures that compare envelopes on it: the
step delay (time to 50 % of a step) and the SNR of the contraction plateau."""
from __future__ import annotations

import numpy as np
from scipy import signal


def synthetic_step_emg(channels: int, steps: int, rate: float = 2000.0,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """White noise band-limited to 20-450 Hz whose amplitude steps between 0.05 (rest) and 1
    (contraction) every second; returns (samples x channels, sample indices of the onsets)."""
    rng = np.random.default_rng(seed)
    half = int(rate)  # one second at rest, one contracting
    amplitude = np.tile(np.r_[np.full(half, 0.05), np.ones(half)], steps)
    noise = signal.sosfilt(signal.butter(4, [20, 450], "bandpass", fs=rate, output="sos"),
                           rng.standard_normal((len(amplitude), channels)), axis=0)
    onsets = np.arange(steps) * 2 * half + half
    return np.ascontiguousarray(noise * amplitude[:, None]), onsets


def envelope_figures(envelope: np.ndarray, onsets: np.ndarray,
                     rate: float = 2000.0) -> tuple[float, float]:
    """(delay in ms to 50 % of the step of the mean step response, SNR in dB of the plateau:
    20 log10(mean / standard deviation) over the last half of each contraction, averaged over
    channels). envelope: samples x channels, one value per input sample. The first step is
    skipped (filters starting from rest)."""
    before, after = int(rate) // 5, int(rate)
    segments = np.stack([envelope[o - before:o + after] for o in onsets[1:]])  # steps x t x ch
    response = segments.mean(axis=(0, 2))
    low, high = response[:before].mean(), response[-after // 4:].mean()
    crossing = int(np.argmax(response[before:] >= low + 0.5 * (high - low)))
    plateau = segments[:, before + after // 2:, :]
    snr = np.mean([20 * np.log10(plateau[..., c].mean() / plateau[..., c].std())
                   for c in range(plateau.shape[2])])
    return 1000.0 * crossing / rate, float(snr)
