"""Small history plots for the health panel: the last ten minutes against "minutes ago",
read like instruments: a y scale that a single spike cannot take over, and each curve's
current value beside its right end.

Samples arrive about once a second (stats and device events). Each series keeps a bounded
deque and hands its existing curve x values relative to the newest sample, so the plot
reads "how long ago" and never needs clock times. The y range and the value labels are
worked out once per sample (and when the plot is resized); nothing here runs per frame.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QGraphicsSimpleTextItem

HISTORY_SECONDS = 600.0
HISTORY_POINTS = 600  # ten minutes at one sample a second
MIN_LABEL_SPACING_PX = 66  # "10 min ago" at 8 pt, and a gap
TICK_STEPS_S = (60, 120, 300, 600)
TICK_POINT_SIZE = 8
TICK_OVERHANG_PX = 32  # "now" and "10 min ago" are centred on the view's edges
TITLE_COLOUR = "#bdbdbd"
TITLE_FILL = pg.mkBrush(0, 0, 0, 170)  # curves pass under the title, still readable
CURVE_COLOUR = "#4fc3f7"
VALUE_GAP_PX = 3  # between the view's right edge and the value labels

# The robust y scale (see robust_top).
SCALE_PERCENTILE = 98.0
HEADROOM = 1.25
NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten that is at
    least `value` (a positive number): a top that stays put while the data jitters."""
    exponent = math.floor(math.log10(value))
    for step in NICE_STEPS:
        top = step * 10.0**exponent
        if top >= value * (1 - 1e-9):
            return top
    return 10.0 ** (exponent + 1)


def robust_top(series: Iterable[Sequence[float]], floor: float) -> float:
    """The top of a y range (whose bottom is zero) for curves of the last ten minutes.

    Not the maximum: one bad sample (a camera that hands over a burst of late frames reads
    600 fps for a second) would squash ten minutes of normal values into the bottom pixels
    until it scrolled out. Each curve counts with the 98th percentile of its samples (the
    "lower" one, an actual sample), so up to 2 % of the window (12 of 600 samples; the
    highest one of a short history) may lie above the scale: such spikes are drawn clipped
    at the top edge (the view clips), and while one is the newest sample its value label
    says how high it went. Anything lasting longer is a real change and rescales the plot.
    Then 25 % headroom, so the normal level stays clear of the frame and of the title in
    the top left corner; at least `floor` (for frame rates a little above the target, so
    jitter of a few hundredths of a frame never looks like a collapse); and rounded up to
    a nice number, so the scale does not twitch with every sample."""
    top = floor
    for values in series:
        if len(values):
            samples = np.fromiter(values, float, len(values))
            typical = float(np.percentile(samples, SCALE_PERCENTILE, method="lower"))
            top = max(top, HEADROOM * typical)
    return nice_ceiling(top)


def spread(centres: Sequence[float], size: float, length: float) -> list[float]:
    """Label centres as near `centres` as can be without overlapping (each label is `size`
    high) and inside 0..length, keeping their order (so each stays nearest its curve)."""
    order = sorted(range(len(centres)), key=lambda index: centres[index])
    placed = [min(max(centre, size / 2), length - size / 2) for centre in centres]
    previous = -math.inf
    for index in order:  # push down what overlaps the label above
        placed[index] = max(placed[index], previous + size)
        previous = placed[index]
    following = length + size / 2
    for index in reversed(order):  # and back up from the bottom edge
        placed[index] = min(placed[index], following - size)
        following = placed[index]
    return placed


class MinutesAgoAxis(pg.AxisItem):
    """An x axis in seconds before now, labelled in whole minutes ("5 min ago", "now")."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        span = max(maxVal - minVal, 1.0)
        for step in TICK_STEPS_S:
            if size * step / span >= MIN_LABEL_SPACING_PX:
                return [(step, 0.0)]
        return [(TICK_STEPS_S[-1], 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return ["now" if round(value) == 0 else f"{-value / 60:g} min ago" for value in values]

    def boundingRect(self) -> QRectF:
        """Room for the labels centred on the view's edges ("now" is the newest sample,
        not to be left out): pyqtgraph draws no label beyond this rectangle."""
        return super().boundingRect().adjusted(-TICK_OVERHANG_PX, 0, TICK_OVERHANG_PX, 0)


class TimeSeries:
    """One curve's samples of the last ten minutes (at most HISTORY_POINTS of them), and
    the label beside its right end with the newest one."""

    def __init__(self, plot: HistoryPlot, curve: pg.PlotDataItem,
                 label: QGraphicsSimpleTextItem) -> None:
        self.plot = plot
        self.curve = curve
        self.label = label
        self.times: deque[float] = deque(maxlen=HISTORY_POINTS)
        self.values: deque[float] = deque(maxlen=HISTORY_POINTS)

    def add(self, now: float, value: float | None) -> None:
        """Record a sample taken at `now` (None: nothing to record, e.g. no battery) and
        redraw, so older samples keep moving left and fall off after ten minutes."""
        if self.times and now < self.times[-1]:
            self.clear()  # the clock went back: the old x values mean nothing any more
        if value is not None:
            self.times.append(now)
            self.values.append(value)
        while self.times and self.times[0] < now - HISTORY_SECONDS:
            self.times.popleft()
            self.values.popleft()
        ago = np.fromiter(self.times, float, len(self.times)) - now
        self.curve.setData(ago, np.fromiter(self.values, float, len(self.values)))
        if value is not None:
            self.label.setText(self.plot.value_text(value))
        self.label.setVisible(value is not None)  # no value now: none to show as current
        self.plot.refresh()

    def clear(self) -> None:
        self.times.clear()
        self.values.clear()


class HistoryPlot(pg.PlotWidget):
    """A compact plot of the last ten minutes, its title inside the view (the dock is low:
    a title row would take a fifth of it) and its curves' current values in a narrow
    column to the right, each in its curve's colour at the height of the curve's end.

    Percentages get a fixed 0..100 y axis; other plots the robust scale of robust_top,
    from zero to at least `floor`."""

    def __init__(self, title: str, *, unit: str = "", decimals: int = 1,
                 percent: bool = False, floor: float = 1.0) -> None:
        super().__init__(axisItems={"bottom": MinutesAgoAxis("bottom")})
        self.series: list[TimeSeries] = []
        self.unit = "%" if percent else unit
        self.decimals = 0 if percent else decimals
        self.percent = percent
        self._floor = floor
        self._top = 0.0
        self.showGrid(x=True, y=True, alpha=0.3)
        self.setXRange(-HISTORY_SECONDS, 0, padding=0)
        self.setMouseEnabled(x=False, y=False)  # a live view: nothing to pan or zoom
        self.hideButtons()
        self._font = QFont()
        self._font.setPointSizeF(TICK_POINT_SIZE)
        for side in ("left", "bottom"):
            self.getAxis(side).setStyle(tickFont=self._font, tickTextOffset=2)
        self.getAxis("left").setWidth(30)  # aligned plots, whatever the labels
        self.getAxis("bottom").setHeight(20)
        if percent:
            self.setYRange(0, 100, padding=0)
            # Labels at the very edges would not fit the axis (pyqtgraph drops them).
            self.getAxis("left").setTicks([[(25, "25"), (50, "50"), (75, "75")]])
        else:
            self.refresh()
        # The values' column: the right axis, without ticks, values or grid of its own.
        metrics = QFontMetricsF(self._font)
        self._line_height = math.ceil(metrics.height()) + 1  # a text item's box, a gap
        widest = metrics.horizontalAdvance(self.value_text(100.0 if percent else 188.8))
        self.showAxis("right")
        values_axis = self.getAxis("right")
        values_axis.setStyle(showValues=False, tickLength=0)
        values_axis.setGrid(False)
        values_axis.setWidth(math.ceil(widest) + 2 * VALUE_GAP_PX)
        self.getViewBox().sigResized.connect(self._place_values)
        label = pg.TextItem(title, color=TITLE_COLOUR, fill=TITLE_FILL)
        label.setParentItem(self.getViewBox())  # view pixels, not data
        label.setPos(2, 0)
        self.setMinimumSize(160, 64)

    def value_text(self, value: float) -> str:
        """A value as its label shows it, with the unit."""
        return f"{value:.{self.decimals}f} {self.unit}".rstrip()

    def add_series(self, name: str | None = None, colour: str = CURVE_COLOUR) -> TimeSeries:
        curve = self.plot(name=name, pen=pg.mkPen(colour, width=2))
        label = QGraphicsSimpleTextItem(self.getAxis("right"))
        label.setFont(self._font)
        label.setBrush(pg.mkBrush(colour))
        label.hide()  # until there is a value
        series = TimeSeries(self, curve, label)
        self.series.append(series)
        return series

    def remove_series(self, series: TimeSeries) -> None:
        self.series.remove(series)
        self.removeItem(series.curve)
        scene = series.label.scene()
        if scene is not None:
            scene.removeItem(series.label)  # and from its parent, the values' column
        self.refresh()

    def set_floor(self, floor: float) -> None:
        """The lowest top of the y range (not for percentages)."""
        if floor != self._floor:
            self._floor = floor
            self.refresh()

    def top(self) -> float:
        return float(self.getViewBox().viewRange()[1][1])

    def refresh(self) -> None:
        """After a sample: the y range, and the value labels beside the curves' ends."""
        if not self.percent:
            top = robust_top((series.values for series in self.series), max(self._floor, 1e-9))
            if top != self._top:
                self._top = top
                self.setYRange(0, top, padding=0)
        self._place_values()

    def _place_values(self) -> None:
        """Each label at the height of its curve's newest point (one beyond the scale at
        the top edge), moved apart where they would overlap."""
        view = self.getViewBox()
        bottom, top = view.viewRange()[1]
        height = view.height()
        shown = [series for series in self.series if series.label.isVisible()]
        if not shown or height <= 0 or top <= bottom:
            return
        ends = [height * (top - series.values[-1]) / (top - bottom) for series in shown]
        for series, centre in zip(shown, spread(ends, self._line_height, height), strict=True):
            series.label.setPos(VALUE_GAP_PX, round(centre - self._line_height / 2))
