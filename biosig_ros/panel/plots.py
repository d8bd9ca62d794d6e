"""pyqtgraph views of the panel: stacked traces (one strip per channel in one plot) and bars.

Each curve holds the stream's own values (V, % MVC, degrees): a strip's offset and scale are
a transform of the curve item, not of its data, so what a curve holds can be compared with
the topic."""
from __future__ import annotations

import numpy as np

from biosig_ros.panel.qt import QTransform, pyqtgraph

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
            "#e377c2")


def short(name: str, length: int = 20) -> str:
    """A channel or DoF name cut in the middle to fit the axis (biorbd's DoF names are long:
    humerus_shoulder_rotation_RotY)."""
    return name if len(name) <= length else name[:length // 2 - 1] + "~" + name[-(length // 2):]


def _plot_widget(title: str) -> pyqtgraph.PlotWidget:
    widget = pyqtgraph.PlotWidget(title=title)
    widget.setMenuEnabled(False)
    widget.setMouseEnabled(x=False, y=False)
    widget.hideButtons()
    widget.showGrid(x=True, y=False, alpha=0.2)
    return widget


class StackedTraces:
    """One strip per channel, newest sample at x = 0 (seconds before it on the left)."""

    def __init__(self, title: str, window_s: float):
        self.widget = _plot_widget(title)
        self.plot = self.widget.getPlotItem()
        self.window_s = window_s
        self.names: list[str] = []
        self.curves: list[pyqtgraph.PlotDataItem] = []
        self.plot.setXRange(-window_s, 0, padding=0)
        self.plot.setLabel("bottom", "time before the newest sample (s)")

    def _set_channels(self, names: list[str], units: list[str]) -> None:
        for curve in self.curves:
            self.plot.removeItem(curve)
        self.names = list(names)
        self.curves = []
        for k, _ in enumerate(names):
            curve = pyqtgraph.PlotCurveItem(pen=pyqtgraph.mkPen(_COLOURS[k % len(_COLOURS)]),
                                            skipFiniteCheck=True)
            self.plot.addItem(curve)
            self.curves.append(curve)
        count = len(names)
        ticks = [(count - 1 - k + 0.5, f"{short(name)} ({unit})" if unit else short(name))
                 for k, (name, unit) in enumerate(zip(names, units))]
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
            if high - low <= 1e-12 * max(1.0, abs(high)):
                low, high = low - 0.5, high + 0.5
            scale = 0.9 / (high - low)
            # y shown = strip base + (value - low) * scale, the curve keeps the values.
            base = count - 1 - k + 0.05
            curve.setTransform(QTransform(1, 0, 0, scale, 0, base - low * scale))
            curve.setData(x, column)

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
            self.plot.getAxis("left").setTicks(
                [[(count - 1 - k, short(name)) for k, name in enumerate(names)], []])
            self.plot.setYRange(-0.6, count - 0.4, padding=0)
        self.heights = np.asarray(percent, dtype=float)
        self.bars.setOpts(x0=np.zeros(count), y=count - 1 - np.arange(count),
                          width=np.nan_to_num(self.heights))
        self.plot.setXRange(0, max(100.0, float(np.nanmax(self.heights, initial=0)) * 1.05),
                            padding=0)
