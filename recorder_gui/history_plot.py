"""Small history plots for the health panel: the last ten minutes against "minutes ago".

Samples arrive about once a second (stats and device events). Each series keeps a bounded
deque and hands its existing curve x values relative to the newest sample, so the plot
reads "how long ago" and never needs clock times; nothing here runs per frame.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

HISTORY_SECONDS = 600.0
HISTORY_POINTS = 600  # ten minutes at one sample a second
MIN_LABEL_SPACING_PX = 42
TICK_STEPS_S = (60, 120, 300, 600)
TICK_POINT_SIZE = 8
TITLE_COLOUR = "#bdbdbd"
TITLE_FILL = pg.mkBrush(0, 0, 0, 170)  # curves pass under the title, still readable


class MinutesAgoAxis(pg.AxisItem):
    """An x axis in seconds before now, labelled in whole minutes ("5 min", "now")."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        span = max(maxVal - minVal, 1.0)
        for step in TICK_STEPS_S:
            if size * step / span >= MIN_LABEL_SPACING_PX:
                return [(step, 0.0)]
        return [(TICK_STEPS_S[-1], 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return ["now" if round(value) == 0 else f"{-value / 60:g} min" for value in values]


class TimeSeries:
    """One curve's samples of the last ten minutes (at most HISTORY_POINTS of them)."""

    def __init__(self, curve: pg.PlotDataItem) -> None:
        self.curve = curve
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

    def clear(self) -> None:
        self.times.clear()
        self.values.clear()

    def peak(self) -> float:
        return max(self.values, default=0.0)


def history_plot(title: str, *, percent: bool = False) -> pg.PlotWidget:
    """A compact plot of the last ten minutes, its title inside the view (the dock is
    low: a title row would take a fifth of it); percentages get a fixed 0..100 y axis."""
    plot = pg.PlotWidget(axisItems={"bottom": MinutesAgoAxis("bottom")})
    plot.showGrid(x=True, y=True, alpha=0.3)
    plot.setXRange(-HISTORY_SECONDS, 0, padding=0)
    plot.setMouseEnabled(x=False, y=False)  # a live view: nothing to pan or zoom
    plot.hideButtons()
    font = QFont()
    font.setPointSizeF(TICK_POINT_SIZE)
    for side in ("left", "bottom"):
        plot.getAxis(side).setStyle(tickFont=font, tickTextOffset=2)
    plot.getAxis("left").setWidth(30)  # aligned plots, whatever the labels
    plot.getAxis("bottom").setHeight(20)
    if percent:
        plot.setYRange(0, 100, padding=0)
        # Labels at the very edges would not fit the axis (pyqtgraph drops them).
        plot.getAxis("left").setTicks([[(25, "25"), (50, "50"), (75, "75")]])
    label = pg.TextItem(title, color=TITLE_COLOUR, fill=TITLE_FILL)
    label.setParentItem(plot.getPlotItem().getViewBox())  # view pixels, not data
    label.setPos(2, 0)
    plot.setMinimumSize(160, 64)
    return plot
