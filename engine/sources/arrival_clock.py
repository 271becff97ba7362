"""When a camera that stamps nothing captured each frame: its steady clock, fitted under the
frames' arrivals.

An MJPEG camera over HTTP sends its frames with no time of its own. Each frame arrives some
delay after its capture: the camera's constant pipeline delay plus jitter (network, the
camera's sender, this machine's scheduling), and after a stall several frames arrive at
once. Taking arrival as capture time would put that jitter into every frame set: a late
frame would look fresh, and a set would take a stale frame for the present moment.

A camera captures on a steady clock, though, so its capture times lie on a line:
capture(k) = base + k * period for its k-th frame slot. Frames never arrive before they are
captured, so the line lies under every arrival, and the frames that came quickest sit on
it. The clock numbers each frame by the slot its arrival falls in (a missed frame leaves a
slot empty), gives it the line's time for that slot, and keeps the line under the
arrivals: one that comes before its slot's time lowers the line at once. Every STRETCH_NS
the line is fitted again through the quickest frame of each stretch of the last
FIT_STRETCHES (the period of the camera's own clock, which no declared rate gives to
better than a percent), under all of them.

A frame almost a period late falls in the next slot, before that slot's time: when that
leaves the slot after the previous frame's empty, it is that slot's frame, late (and
moves no line). A frame of a burst after a stall gets no time after its arrival, and no
later than the frame after it: of frames with equal times a set takes the newer, the
fresher picture. What a capture time keeps is the camera's quickest delivery delay, a
constant per camera, as with the fastest-frame mapping of RTP times.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

STRETCH_NS = 500_000_000  # each stretch gives its quickest frame to the fit
FIT_STRETCHES = 40  # the fit looks back this many stretches (20 s)
MIN_FIT_STRETCHES = 3  # fewer: the starting period stands
SLOT_EARLY = 0.25  # an arrival this share of a period before a slot's time belongs to it
RESTART_PERIODS = 50  # a silence this long starts a new line (a camera restarted)


class ArrivalClock:
    """Capture times of a steadily clocked camera from its frames' arrivals (see the
    module). Times never go back; reset() starts a new line (a new connection) and keeps
    the period learned."""

    def __init__(self, period_ns: float) -> None:
        self.period_ns = float(period_ns)
        self.reset()

    def reset(self) -> None:
        self._origin_ns: int | None = None  # the first arrival: floats count from it
        self._base = 0.0  # the line's time of slot 0, in ns from the origin
        self._last_slot = 0
        self._last_arrived = 0.0
        self._last_captured_ns = 0
        self._stretch_end = 0.0
        self._stretch_low: tuple[float, int, float] | None = None  # (lag, slot, arrival)
        self._quickest: deque[tuple[int, float]] = deque(maxlen=FIT_STRETCHES)

    def capture_ns(self, arrived_ns: int) -> int:
        """The capture time of the frame that arrived at arrived_ns (monotonic ns)."""
        if self._origin_ns is None:
            self._origin_ns = arrived_ns
            self._stretch_end = STRETCH_NS
        arrived = float(arrived_ns - self._origin_ns)  # ns since the origin: exact in float
        if arrived - self._last_arrived > RESTART_PERIODS * self.period_ns:
            self.reset()
            return self.capture_ns(arrived_ns)
        self._last_arrived = arrived
        slot = max(self._last_slot,
                   math.floor((arrived - self._base) / self.period_ns + SLOT_EARLY))
        lag = arrived - (self._base + slot * self.period_ns)
        if lag < 0 and slot == self._last_slot + 2:  # the skipped slot's frame, late
            slot -= 1
        elif lag < 0:  # the line lies under every arrival
            self._base += lag
        self._last_slot = slot
        self._note_quickest(slot, arrived)
        captured_ns = self._origin_ns + round(self._base + slot * self.period_ns)
        self._last_captured_ns = max(min(captured_ns, arrived_ns), self._last_captured_ns)
        return self._last_captured_ns

    def _note_quickest(self, slot: int, arrived: float) -> None:
        lag = arrived - slot * self.period_ns  # the base left out: it moves, the period not
        if self._stretch_low is None or lag < self._stretch_low[0]:
            self._stretch_low = (lag, slot, arrived)
        if arrived < self._stretch_end:
            return
        self._quickest.append(self._stretch_low[1:])
        self._stretch_low = None
        self._stretch_end = arrived + STRETCH_NS
        if len(self._quickest) >= MIN_FIT_STRETCHES:
            self._fit()

    def _fit(self) -> None:
        """The line through the stretches' quickest frames, lowered under all of them."""
        slots = np.array([slot for slot, _ in self._quickest], np.float64)
        arrivals = np.array([arrived for _, arrived in self._quickest], np.float64)
        if slots[-1] == slots[0]:
            return
        period, base = np.polyfit(slots, arrivals, 1)
        if period <= 0:
            return
        base -= max(0.0, float(np.max(base + period * slots - arrivals)))
        self.period_ns, self._base = float(period), float(base)
