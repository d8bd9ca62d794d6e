"""pyqtgraph views of the panel: stacked traces (one strip per channel in one plot) and bars.

Each curve holds the stream's own values (V, % MVC, degrees): a strip's offset and scale are
a transform of the curve item, not of its data, so what a curve holds can be compared with
the topic."""
from __future__ import annotations

import numpy as np

from biosig_ros.panel.qt import QFont, QGraphicsItem, QTransform, pyqtgraph

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
            "#e377c2")


class StripCurve(pyqtgraph.PlotCurveItem):
    """A curve whose bounds are given rather than searched in its data at every repaint
    (pyqtgraph's nanmin/nanmax per curve and paint was a tenth of the panel's GUI time)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bounds = ((0.0, 1.0), (0.0, 1.0))

    def set_data(self, x: np.ndarray, y: np.ndarray, low: float, high: float) -> None:
        self._bounds = ((float(x[0]), float(x[-1])) if len(x) else (0.0, 1.0), (low, high))
        self.setData(x, y)

    def dataBounds(self, ax, frac=1.0, orthoRange=None):  # noqa: N802 - pyqtgraph's name
        return self._bounds[ax]


def strip_range(low: float, high: float, shown: tuple[float, float] | None
                ) -> tuple[float, float]:
    """The range a strip shows for data within [low, high]: kept while the data fill more
    than half of it (a steady scale, and no geometry change at every frame), else refitted
    with 10 % margins."""
    if high - low <= 1e-12 * max(1.0, abs(high)):
        low, high = low - 0.5, high + 0.5
    if shown is not None:
        shown_low, shown_high = shown
        if shown_low <= low and high <= shown_high and (
                high - low) > 0.5 * (shown_high - shown_low):
            return shown
    margin = 0.1 * (high - low)
    return low - margin, high + margin


def short(name: str, length: int = 20) -> str:
    """A channel or DoF name cut in the middle to fit the axis (biorbd's DoF names are long:
    humerus_shoulder_rotation_RotY)."""
    return name if len(name) <= length else name[:length // 2 - 1] + "~" + name[-(length // 2):]


def _small_names(axis, count: int) -> None:
    """Many names on one axis: a smaller font so that they do not overlap."""
    font = QFont()
    font.setPointSizeF(8.0 if count > 8 else 9.5)
    axis.setStyle(tickFont=font)


def _plot_widget(title: str) -> pyqtgraph.PlotWidget:
    widget = pyqtgraph.PlotWidget(title=title)
    widget.setMenuEnabled(False)
    widget.setMouseEnabled(x=False, y=False)
    widget.hideButtons()
    widget.showGrid(x=True, y=False, alpha=0.2)
    # The axes change rarely: cached as pixmaps, a repaint of the plot blits them instead of
    # drawing their text again (replaying the axes was a tenth of the GUI thread's time).
    for name in ("left", "bottom"):
        widget.getPlotItem().getAxis(name).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
    return widget


class StackedTraces:
    """One strip per channel, newest sample at x = 0 (seconds before it on the left)."""

    def __init__(self, title: str, window_s: float):
        self.widget = _plot_widget(title)
        self.plot = self.widget.getPlotItem()
        self.window_s = window_s
        self.names: list[str] = []
        self.curves: list[StripCurve] = []
        self._ranges: list[tuple[float, float] | None] = []
        self.plot.setXRange(-window_s, 0, padding=0)
        self.plot.setLabel("bottom", "time before the newest sample (s)")

    def _set_channels(self, names: list[str], units: list[str]) -> None:
        for curve in self.curves:
            self.plot.removeItem(curve)
        self.names = list(names)
        self.curves = []
        self._ranges = [None] * len(names)
        for k, _ in enumerate(names):
            curve = StripCurve(pen=pyqtgraph.mkPen(_COLOURS[k % len(_COLOURS)]),
                               skipFiniteCheck=True)
            self.plot.addItem(curve)
            self.curves.append(curve)
        count = len(names)
        ticks = [(count - 1 - k + 0.5, f"{short(name)} ({unit})" if unit else short(name))
                 for k, (name, unit) in enumerate(zip(names, units))]
        _small_names(self.plot.getAxis("left"), count)
        self.plot.getAxis("left").setTicks([ticks, []])
        self.plot.setYRange(0, max(1, count), padding=0.01)

    def update(self, names: list[str], units: list[str], t: np.ndarray,
               values: np.ndarray) -> None:
        """Draw `values` (rows x channels) at stamps t; each strip spans its own range."""
        if names != self.names:
            self._set_channels(names, units)
        if len(t) == 0:
            for curve in self.curves:
                curve.setData([], [])
            return
        x = t - t[-1]
        count = len(names)
        for k, curve in enumerate(self.curves):
            column = values[:, k]
            finite = column[np.isfinite(column)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0, 1)
            shown = strip_range(low, high, self._ranges[k])
            if shown != self._ranges[k]:
                self._ranges[k] = shown
                scale = 1.0 / (shown[1] - shown[0])
                # y on screen = strip base + (value - shown low) * scale; the curve keeps
                # the values.
                base = count - 1 - k
                curve.setTransform(QTransform(1, 0, 0, scale, 0, base - shown[0] * scale))
            curve.set_data(x, column, low, high)

    def curve_values(self, channel: int) -> np.ndarray:
        """What the curve of `channel` holds (its y data), for tests."""
        data = self.curves[channel].getData()[1]
        return np.zeros(0) if data is None else np.asarray(data)


class Bars:
    """A horizontal bar per channel (activation in % MVC, channels top to bottom as in the
    envelope strips), or a note when the envelope has no MVC."""

    def __init__(self, title: str):
        self.widget = _plot_widget(title)
        self.plot = self.widget.getPlotItem()
        self.bars = pyqtgraph.BarGraphItem(x0=[], y=[], width=[], height=0.7, brush="#1f77b4")
        self.plot.addItem(self.bars)
        self.note = pyqtgraph.TextItem("", color="#555555", anchor=(0.5, 0.5))
        self.plot.addItem(self.note)
        self.plot.setLabel("bottom", "% MVC")
        self.widget.setMinimumHeight(200)  # room for ten channel names
        self.names: list[str] = []
        self.heights = np.zeros(0)

    def update(self, names: list[str], percent: np.ndarray | None, note: str) -> None:
        if percent is None:
            self.heights = np.zeros(0)
            self.names = []
            self.bars.setOpts(x0=[], y=[], width=[])
            self.plot.getAxis("left").setTicks([[], []])
            self.note.setText(note)
            self.note.setPos(50, 0.5)
            self.plot.setXRange(0, 100)
            self.plot.setYRange(0, 1)
            return
        self.note.setText("")
        count = len(names)
        if names != self.names:
            self.names = list(names)
            # Beyond 10 bars, every other name (or every third...): the bars are in the
            # envelope strips' order, which name them all.
            every = max(1, -(-count // 10))
            _small_names(self.plot.getAxis("left"), count)
            self.plot.getAxis("left").setTicks(
                [[(count - 1 - k, short(name)) for k, name in enumerate(names)
                  if k % every == 0], []])
            self.plot.setYRange(-0.6, count - 0.4, padding=0)
        self.heights = np.asarray(percent, dtype=float)
        self.bars.setOpts(x0=np.zeros(count), y=count - 1 - np.arange(count),
                          width=np.nan_to_num(self.heights))
        self.plot.setXRange(0, max(100.0, float(np.nanmax(self.heights, initial=0)) * 1.05),
                            padding=0)
