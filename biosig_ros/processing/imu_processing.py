"""IMU processing (accelerometer or gyroscope of Trigno sensors, from emg/aux), ROS-free.

Two cores, one call per chunk (samples x (IMUs x 3), the axes of one sensor kind):
- BiosigliveImu: biosiglive 2.0.3's RealTimeProcessing.process_imu bit for bit (its options:
  accel, squared, norm_min_bound / norm_max_bound): it keeps the last `processing_window`
  samples and, per call, appends the mean of that window (or its norm; minus 9.81 and absolute
  with accel) to its output buffer; one new value per call.
- StreamingImu: the same quantities at every sample of the aux rate, with state carried across
  chunks: optional Butterworth low-pass, moving mean over `window_s` (O(1) per sample), norm
  (|norm - g| for an accelerometer), normalisation.
Defects of biosiglive's process_imu, and what is done here instead:
- data with 9 components per IMU (Trigno Avanti: acc, gyro, mag) crash it: it reshapes the
  means to (-1, 3, 1), which mixes IMUs and components, then fails to append them to its
  (IMUs, 9, k) buffer. Here the node picks one sensor kind's x, y, z per IMU by channel name,
  and BiosigliveImu takes any multiple of 3 components as consecutive triplets;
- with squared=True and normalisation, it divides each norm by norm_max_bound three times (its
  loop over the 3 axes runs on the norm): reproduced in the compatible mode, noted in the docs;
  the streaming mode divides once;
- one bound without the other raises TypeError on the first value of the missing sign; here
  both are required together (ConfigError);
- a float data rate without processing_window breaks its slicing: the window defaults to
  round(rate) here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.processing.emg_filters import (
    LowPass, LowPassSettings, MovingMean, WindowSettings, check_count)
from biosig_ros.processing.emg_pipeline import refuse_non_finite
from biosig_ros.settings import doc_field, require_choice

GRAVITY = 9.81  # biosiglive's constant (not 9.80665)
IMU_MODES = ("streaming", "biosiglive")
SENSORS = ("acc", "gyro")
AXES = ("x", "y", "z")


def _doc(default, text: str, **options):
    return doc_field(default, text, **options)


@dataclass
class ImuProcessingSettings:
    """The IMU node's parameters (the documentation of each lives here)."""

    mode: str = _doc("streaming", "streaming (stateful filters, every aux sample) | biosiglive "
                     "(RealTimeProcessing.process_imu, bit for bit: one value per chunk)")
    sensor: str = _doc("acc", "acc | gyro: which x, y, z channels of each IMU to process "
                       "(names ending _acc_x ... or _gyro_x ...); acc also sets biosiglive's "
                       "accel (norm minus 9.81, absolute)")
    squared: bool = _doc(False, "publish each IMU's norm (biosiglive's squared) instead of its "
                         "three axes")
    norm_min_bound: float = _doc(0.0, "negative values are divided by |norm_min_bound| (0 with "
                                 "norm_max_bound 0 = no normalisation)", range=(-1e9, 1e9))
    norm_max_bound: float = _doc(0.0, "values >= 0 are divided by norm_max_bound (give both "
                                 "bounds or neither)", range=(-1e9, 1e9))
    processing_window: int = _doc(0, "biosiglive mode: samples averaged per call (0 = one "
                                  "second, round(rate))", range=(0, 1_000_000))
    window_s: float = _doc(1.0, "streaming: seconds of the moving mean (biosiglive averages its "
                           "1-second window); 0 = no mean", range=(0.0, 3600.0))
    lowpass_hz: float = _doc(0.0, "streaming: Butterworth low-pass cut-off before the mean "
                             "(Hz, below half the aux rate); 0 = off", range=(0.0, 1e5))
    lowpass_order: int = _doc(2, "streaming: order of that low-pass", range=(1, 10))
    restart_after_s: float = _doc(1.0, "a chunk this many seconds of samples behind the expected "
                                  "index is a restarted stream (filters reset)",
                                  range=(1e-3, 3600.0))
    loss_window_s: float = _doc(10.0, "diagnostics stay WARN this long after input samples were "
                                "lost, late or refused", range=(0.1, 3600.0))

    def __post_init__(self) -> None:
        require_choice("mode", self.mode, IMU_MODES)
        require_choice("sensor", self.sensor, SENSORS)
        if bool(self.norm_min_bound) != bool(self.norm_max_bound):
            raise ConfigError("parameters 'norm_min_bound' and 'norm_max_bound' go together: "
                              "give both (non-zero) or neither (biosiglive fails on the sign "
                              "whose bound is missing)")
        check_count("processing_window", self.processing_window, 0)
        check_count("lowpass_order", self.lowpass_order, 1, 10)
        for name in ("window_s", "lowpass_hz", "restart_after_s", "loss_window_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"parameter '{name}' must be a number >= 0, got {value!r}")
        if self.mode == "biosiglive" and (self.lowpass_hz or self.window_s != 1.0):
            raise ConfigError("parameters 'lowpass_hz' and 'window_s' apply to mode "
                              "'streaming' (biosiglive averages processing_window samples)")

    @property
    def normalised(self) -> bool:
        return bool(self.norm_max_bound)


def select_imu_channels(names: list[str], sensor: str) -> tuple[list[int], list[str]]:
    """Column indices of each IMU's x, y, z of `sensor` (IMUs in order of appearance) and the
    IMU names (the prefix before _acc_x ...). ValueError naming what is missing."""
    suffixes = [f"_{sensor}_{axis}" for axis in AXES]
    found: dict[str, dict[str, int]] = {}
    for column, name in enumerate(names):
        for axis, suffix in zip(AXES, suffixes):
            if name.endswith(suffix):
                found.setdefault(name[:-len(suffix)], {})[axis] = column
    if not found:
        raise ValueError(f"no channel named *_{sensor}_x/y/z among {len(names)} channels "
                         f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})")
    incomplete = [f"{imu} lacks {', '.join(a for a in AXES if a not in axes)}"
                  for imu, axes in found.items() if len(axes) < 3]
    if incomplete:
        raise ValueError(f"incomplete {sensor} axes: {'; '.join(incomplete)}")
    columns = [found[imu][axis] for imu in found for axis in AXES]
    return columns, list(found)


def _normalise_loop(average: np.ndarray, low: float, high: float, repeats: int) -> None:
    """biosiglive's element loop, in place: < 0 divided by |low|, >= 0 by high, `repeats`
    times (3 for its norm case, where its loop runs over the 3 axes on the same value)."""
    for i in range(average.shape[0]):
        for _ in range(repeats):
            for j in range(average.shape[1]):
                if average[i, j] < 0:
                    average[i, j] = average[i, j] / abs(low)
                elif average[i, j] >= 0:
                    average[i, j] = average[i, j] / high


class BiosigliveImu:
    """RealTimeProcessing(rate, processing_window).process_imu(accel, squared, bounds) with
    fixed parameters; process_imu(im_data (IMUs, 3k, samples)) returns biosiglive's array."""

    def __init__(self, rate: float, imus: int, settings: ImuProcessingSettings,
                 components: int = 3):
        if components % 3:
            raise ConfigError(f"IMU data need x, y, z triplets, got {components} components")
        self.settings = settings
        self.imus, self.components = imus, components
        self.window = settings.processing_window or int(round(rate))
        check_count("processing_window", self.window, 2)
        self.reset()

    def reset(self) -> None:
        self._buffer = np.zeros((self.imus, self.components, 2 * self.window + 64))
        self._end = 0
        self._processed: np.ndarray | None = None

    @property
    def filling(self) -> bool:
        return self._end < self.window

    def _append(self, data: np.ndarray) -> None:
        n = data.shape[2]
        if self._end + n > self._buffer.shape[2]:
            keep = min(self._end, self.window)
            self._buffer[:, :, :keep] = self._buffer[:, :, self._end - keep:self._end].copy()
            self._end = keep
        self._buffer[:, :, self._end:self._end + n] = data
        self._end += n

    def process_imu(self, im_data: np.ndarray) -> np.ndarray:
        s = self.settings
        n = im_data.shape[2]
        if n >= self.window:
            raise ValueError(f"a chunk of {n} samples is not shorter than processing_window "
                             f"({self.window})")
        first, filling = self._end == 0, self.filling
        self._append(im_data)
        triplets = self.components // 3
        # biosiglive's buffer: (IMUs, 3, k), or (IMUs, k) for norms; (IMUs, triplets, k) for
        # norms of more than one triplet (where biosiglive crashes).
        rows = ((self.imus,) if triplets == 1 else (self.imus, triplets)) if s.squared \
            else (self.imus, self.components)
        if first:  # biosiglive keeps the first chunk and returns a one-column buffer
            self._processed = np.zeros((*rows, 1))
            return self._processed
        if filling:  # ... then zeros as long as the raw buffer until it holds a full window
            self._processed = np.zeros((*rows, self._end))
            return self._processed
        window = self._buffer[:, :, self._end - self.window:self._end]
        average = np.mean(window, axis=2)
        if s.squared:
            # Norm of each consecutive triplet (biosiglive: axis 1 of the (-1, 3, 1) reshape:
            # the same three squares summed in the same order).
            if len(rows) == 1:
                norms = np.linalg.norm(average, axis=1)[:, None]
            else:
                norms = np.linalg.norm(average.reshape(self.imus, -1, 3), axis=2)
            average = abs(norms - GRAVITY) if s.sensor == "acc" else norms
        if s.normalised:
            _normalise_loop(average, s.norm_min_bound, s.norm_max_bound, 3 if s.squared else 1)
        column = average if len(rows) == 1 else average[..., None]
        self._processed = np.append(self._processed[..., 1:], column, axis=-1)
        return self._processed


class StreamingImu:
    """Every sample: low-pass (optional), moving mean over window_s (optional), then norm and
    normalisation. process(data samples x (IMUs x 3)) -> samples x outputs."""

    def __init__(self, rate: float, imus: int, settings: ImuProcessingSettings):
        s = settings
        self.settings, self.imus = s, imus
        channels = 3 * imus
        self._lowpass = (LowPass(LowPassSettings(rate, s.lowpass_hz, s.lowpass_order), channels)
                         if s.lowpass_hz else None)
        window = int(round(s.window_s * rate))
        self._mean = MovingMean(WindowSettings(window), channels) if window > 1 else None

    def reset(self) -> None:
        for stage in (self._lowpass, self._mean):
            if stage is not None:
                stage.reset()

    def process(self, data: np.ndarray) -> np.ndarray:
        s = self.settings
        x = np.ascontiguousarray(data.T, dtype=np.float64)  # channels x samples
        if self._lowpass is not None:
            x = self._lowpass.step(x)
        if self._mean is not None:
            x = self._mean.step(x)
        if s.squared:
            x = np.sqrt((x.reshape(self.imus, 3, -1) ** 2).sum(axis=1))
            if s.sensor == "acc":
                x = np.abs(x - GRAVITY)
        if s.normalised:
            x = np.where(x < 0, x / abs(s.norm_min_bound), x / s.norm_max_bound)
        return x.T


def output_names(imus: list[str], settings: ImuProcessingSettings) -> list[str]:
    if settings.squared:
        return [f"{imu}_{settings.sensor}_norm" for imu in imus]
    return [f"{imu}_{settings.sensor}_{axis}" for imu in imus for axis in AXES]


__all__ = ["ImuProcessingSettings", "BiosigliveImu", "StreamingImu", "select_imu_channels",
           "output_names", "refuse_non_finite", "GRAVITY"]
