"""biosiglive-compatible EMG processing: the output of biosiglive 2.0.3's
RealTimeProcessing.process_emg (and of its offline processing and MVC) bit for bit.

What biosiglive does on every call, once `processing_window` samples (default: one second, the
data rate) have arrived - before that it returns zeros:
  1. keeps the last `processing_window` raw samples,
  2. band-passes that whole window FROM REST with a 5th-order Butterworth in transfer-function
     form, scipy.signal.lfilter(b, a) (the order is hard-coded: its bp_butter_order attribute
     has no effect),
  3. centres it by subtracting the window's mean, rectifies it,
  4. moving_average=True (default): appends the MEDIAN (not the mean) of the last
     moving_average_window (200) samples, divided by the MVC, to its output; it returns the
     window's rectified samples 1.. followed by that median, so only the last column is an
     envelope; low_pass_filter=True: returns the whole window low-passed forward and backward
     (scipy.signal.filtfilt, zero phase within the window).

BiosigliveRealTime.process_emg returns the same arrays as biosiglive for the same calls; its
process() gives the node the new envelope value(s) of each call. Differences from the streaming
core (EmgPipeline), which is what a biosiglive user sees when switching modes:
  - the band-pass restarts from rest on every call, so its output is a truncated (1-second)
    impulse response: the first samples of each window carry the start transient, the centring
    mean includes it, and the newest samples differ from a continuous filter by the tail the
    window cuts off (small for a 10 Hz high-pass over 1 s, not zero);
  - one envelope value per call (per chunk), none during the first processing_window samples;
  - the work per call grows with processing_window (2000 x channels samples filtered per call).
Defects of biosiglive not reproduced (each documented where it is handled):
  - its low-pass path crashes with current scipy (butter(order, [Wn], btype="low") with a
    one-element list raises TypeError); the compatible mode applies the low-pass biosiglive
    meant (a scalar cut-off), which equals its output with that call fixed;
  - a float data rate without an explicit processing_window crashes its slicing; here the
    window defaults to round(data_rate);
  - a chunk as long as the window makes its buffer grow without bound; refused here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.emg_filters import check_count, check_cutoff, check_rate
from biosig_ros.processing.emg_pipeline import Envelope, refuse_non_finite
from biosig_ros.processing.mvc import biosiglive_compute_mvc, check_mvc

BIOSIGLIVE_BANDPASS_ORDER = 5  # GenericProcessing._butter_bandpass_filter's default, always used


@dataclass
class BiosigliveSettings:
    """The parameters of RealTimeProcessing(data_rate, processing_window).process_emg(...),
    under biosiglive's names and defaults."""

    data_rate: float = 2000.0
    channel_count: int = 10
    processing_window: int = 0          # 0 = round(data_rate), biosiglive's default
    band_pass_filter: bool = True
    low_pass_filter: bool = False
    moving_average: bool = True
    centering: bool = True
    absolute_value: bool = True
    normalization: bool = False
    mvc_list: list[float] = field(default_factory=list)
    moving_average_window: int = 200
    bpf_lcut: float = 10.0
    bpf_hcut: float = 425.0
    lpf_lcut: float = 5.0
    lp_butter_order: int = 4

    def __post_init__(self) -> None:
        check_rate("data_rate", self.data_rate)
        check_count("channel_count", self.channel_count)
        if self.processing_window == 0:
            self.processing_window = int(round(self.data_rate))
        check_count("processing_window", self.processing_window, 2)
        check_count("moving_average_window", self.moving_average_window)
        if self.moving_average and self.moving_average_window > self.processing_window:
            raise ConfigError(
                f"parameter 'moving_average_window' ({self.moving_average_window} samples) is "
                f"larger than the buffer 'processing_window' ({self.processing_window} samples)")
        if self.low_pass_filter and self.moving_average:
            raise ConfigError("parameters 'low_pass_filter' and 'moving_average' are exclusive "
                              "(biosiglive: 'Please choose between low-pass filter and moving "
                              "average.')")
        if self.band_pass_filter:
            check_cutoff("bpf_lcut", self.bpf_lcut, self.data_rate)
            check_cutoff("bpf_hcut", self.bpf_hcut, self.data_rate)
            if not self.bpf_lcut < self.bpf_hcut:
                raise ConfigError(f"parameter 'bpf_lcut' ({self.bpf_lcut}) must be below "
                                  f"'bpf_hcut' ({self.bpf_hcut})")
        if self.low_pass_filter:
            check_cutoff("lpf_lcut", self.lpf_lcut, self.data_rate)
            check_count("lp_butter_order", self.lp_butter_order, 1, 10)
        if self.normalization:
            if not self.mvc_list:
                raise ConfigError("parameter 'mvc_list' is required with normalization=True")
            check_mvc(self.mvc_list, self.channel_count, "mvc_list")


def _signal():
    """scipy.signal, imported when biosiglive's processing is first used: it costs about 1.4 s
    of start-up to every importer (see filter_design)."""
    from scipy import signal

    return signal


def _bandpass_coefficients(rate: float, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    nyq = 0.5 * rate  # biosiglive's arithmetic, operation for operation
    return _signal().butter(BIOSIGLIVE_BANDPASS_ORDER, [low / nyq, high / nyq], btype="band")


def _lowpass_coefficients(rate: float, cutoff: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    nyq = 0.5 * rate
    # biosiglive passes [cutoff / nyq]: current scipy refuses a one-element list for a low-pass.
    return _signal().butter(order, cutoff / nyq, btype="low")


def _center(data: np.ndarray) -> np.ndarray:
    return data - data.mean(axis=1)[:, None]


class BiosigliveRealTime:
    """RealTimeProcessing(data_rate, processing_window).process_emg with fixed parameters.

    The raw buffer is a preallocated array instead of biosiglive's np.append, and the filter
    coefficients are designed once instead of on every call; the arithmetic on the window is
    biosiglive's, so the results are identical.
    """

    def __init__(self, settings: BiosigliveSettings):
        self.settings = s = settings
        self.channel_count = s.channel_count
        self.window = s.processing_window
        self._bandpass = _bandpass_coefficients(s.data_rate, s.bpf_lcut, s.bpf_hcut)
        self._lowpass = (_lowpass_coefficients(s.data_rate, s.lpf_lcut, s.lp_butter_order)
                         if s.low_pass_filter else None)
        self._quot = (np.array(s.mvc_list, dtype=np.float64).reshape(-1, 1)
                      if s.normalization else np.array([1]))
        self.reset()

    def reset(self) -> None:
        self._buffer = np.zeros((self.channel_count, 2 * self.window + 64))
        self._end = 0                 # samples stored in _buffer
        self._seen = 0                # samples received
        self._warmup_columns = 0      # width of the zeros biosiglive returns while filling
        self._processed: np.ndarray | None = None

    @property
    def filling(self) -> bool:
        """True until processing_window samples have arrived (biosiglive returns zeros)."""
        return self._seen < self.window

    def _append(self, data: np.ndarray) -> None:
        n = data.shape[1]
        if self._end + n > self._buffer.shape[1]:
            keep = min(self._end, self.window)
            tail = self._buffer[:, self._end - keep:self._end].copy()
            if keep + n > self._buffer.shape[1]:
                self._buffer = np.zeros((self.channel_count, 2 * (keep + n)))
            self._buffer[:, :keep] = tail
            self._end = keep
        self._buffer[:, self._end:self._end + n] = data
        self._end += n
        self._seen += n

    def _processed_window(self) -> np.ndarray:
        """Steps 2-3 on the last processing_window samples (biosiglive's process_generic_signal
        with low-pass and moving average off)."""
        s = self.settings
        window = self._buffer[:, self._end - self.window:self._end]
        data = window
        if s.band_pass_filter:
            data = _signal().lfilter(*self._bandpass, window)
        if s.centering:
            data = _center(data)
        if s.absolute_value:
            data = np.abs(data)
        return data

    def process_emg(self, emg_data: np.ndarray) -> np.ndarray:
        """biosiglive's return value for this call. emg_data: channels x samples."""
        s = self.settings
        emg_data = np.asarray(emg_data, dtype=np.float64)
        if emg_data.ndim != 2 or emg_data.shape[0] != self.channel_count:
            raise ValueError(f"emg_data must be {self.channel_count} channels x samples, "
                             f"got shape {emg_data.shape}")
        n = emg_data.shape[1]
        if n == 0:
            raise ValueError("EMG data are empty.")
        if n >= self.window:
            raise ValueError(f"a chunk of {n} samples is not shorter than processing_window "
                             f"({self.window}): biosiglive's buffer would grow without bound")
        filling = self.filling
        self._append(emg_data)
        if filling:
            self._warmup_columns += 1 if s.moving_average else n
            return np.zeros((self.channel_count, self._warmup_columns))
        processed = self._processed_window()
        if s.low_pass_filter:
            self._processed = _signal().filtfilt(*self._lowpass, processed) / self._quot
        elif s.moving_average:
            average = np.median(processed[:, -s.moving_average_window:], axis=1).reshape(-1, 1)
            self._processed = np.append((processed / self._quot)[:, 1:], average / self._quot,
                                        axis=1)
        else:
            self._processed = processed / self._quot
        return self._processed

    def process(self, data: np.ndarray, first_index: int = 0) -> Envelope:
        """The values a call adds, for a chunk of samples x channels: with moving_average, the
        median (one sample, at the chunk's last sample: decimation = chunk length); otherwise
        the window's last n samples (the chunk's own). Nothing while the window fills.
        A non-finite sample: ValueError, the state untouched."""
        refuse_non_finite(data)
        n = data.shape[0]
        was_filling = self.filling
        output = self.process_emg(data.T)
        if was_filling:
            return Envelope(np.arange(0), np.empty((0, self.channel_count)), 1, 0)
        if self.settings.moving_average:
            return Envelope(np.array([n - 1]), output[:, -1:].T, n, (first_index + n - 1) // n)
        return Envelope(np.arange(n), output[:, -n:].T, 1, first_index)


def offline_process_emg(data: np.ndarray, data_rate: float, band_pass_filter: bool = True,
                        low_pass_filter: bool = False, moving_average: bool = True,
                        centering: bool = True, absolute_value: bool = True,
                        normalization: bool = False, mvc_list=None,
                        moving_average_window: int = 200, bpf_lcut: float = 10,
                        bpf_hcut: float = 425, lpf_lcut: float = 5,
                        lp_butter_order: int = 4) -> np.ndarray:
    """biosiglive's OfflineProcessing.process_emg (process_generic_signal), channels x samples:
    causal 5th-order band-pass, centring on the whole record, rectification, then a
    zero-phase low-pass (filtfilt) or a CENTRED moving MEAN (convolution 'same', FFT).
    Its low-pass crash (see the module docstring) is fixed the same way."""
    data = np.asarray(data, dtype=np.float64)
    if low_pass_filter and moving_average:
        raise ConfigError("low_pass_filter and moving_average are exclusive")
    processed = data
    if band_pass_filter:
        processed = _signal().lfilter(*_bandpass_coefficients(data_rate, bpf_lcut, bpf_hcut),
                                      data)
    if centering:
        processed = _center(processed)
    if absolute_value:
        processed = np.abs(processed)
    if low_pass_filter:
        coefficients = _lowpass_coefficients(data_rate, lpf_lcut, lp_butter_order)
        processed = _signal().filtfilt(*coefficients, processed)
    elif moving_average:
        kernel = np.repeat(1, moving_average_window) / moving_average_window
        averaged = np.ndarray(data.shape)
        for i in range(data.shape[0]):
            averaged[i, :] = _signal().convolve(processed[i, :], kernel, mode="same",
                                                method="fft")
        processed = averaged
    if normalization:
        mvc = check_mvc(mvc_list, data.shape[0], "mvc_list")
        processed = processed / mvc[:, None]
    return processed


def compute_mvc_from_raw(trials: list[np.ndarray], data_rate: float = 2000,
                         mvc_window: int = 2000) -> np.ndarray:
    """The MVC biosiglive's ComputeMvc reports for raw trials (each channels x samples), with its
    default processing: every trial is processed offline (band-pass, centring, rectification,
    centred 200-sample moving mean), the processed trials are concatenated and processed AGAIN
    (ComputeMvc._save_trial calls _process_emg on already processed data), then compute_mvc."""
    processed = [offline_process_emg(t, data_rate) for t in trials]
    twice = offline_process_emg(np.concatenate(processed, axis=1), data_rate)
    return biosiglive_compute_mvc(twice.shape[0], twice, mvc_window)
