"""The controller's side of the sync gate: the control block and its hold point.

Everything that must happen "between frames" (record start / stop, a writing pause and
its resume, a freeze, a settings change, a camera joining) gathers the group: the hold
point is raised until every camera in the gate has published the same frame count and
none is grabbing. That count is then a frame boundary every camera shares. The gate
also parks a camera that left (neutral cells, so the others run on) and places one that
joins.

Only this object writes the control block's group cells and a camera's gate cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engine.capture.errors import GroupError
from engine.ipc.control import (
    C_COMMAND_SEQ,
    C_COUNT,
    C_DROPPED,
    C_ERROR,
    C_GRABBING,
    C_READY,
    C_ROOM,
    G_FIRST_RECORDING,
    G_HOLD_AT,
    G_LAST_RECORDING,
    G_PAUSE_FROM,
    G_PAUSE_UNTIL,
    G_SET_ANCHOR_FRAME,
    G_SET_ANCHOR_NS,
    G_SET_PERIOD_NS,
    G_SET_SHIFT_NS,
    G_STOP,
    GRAB_HISTORY,
    NO_HOLD,
    PARKED,
    GroupState,
)
from engine.ipc.doorbell import Doorbell, ring_all

_GATHER_POLL_S = 0.0005
_FENCE_S = 0.001
# The first frame set after a hold is due this long after the release, on the period
# grid (time for every camera to see the release).
_RESTART_LEAD_NS = 2_000_000
# A take that starts at a given moment holds the group this many sets before it, so a
# late camera still makes it in time.
_MOMENT_MARGIN_SETS = 2


class Gate:
    """The control block of one group; `frozen` while the cameras are held (Freeze
    preview). The caller serializes gathers (one controller lock)."""

    def __init__(self, n_cameras: int, failed: Callable[[], list[str]]) -> None:
        """`failed`: ids of cameras that failed, named when a gather times out."""
        self.state = GroupState.create(n_cameras)
        # Per camera row, its recording writer's: rung when a frame set it waits for may
        # be complete (by the cameras) or its take's end changed (here).
        self.doorbells = [Doorbell() for _ in range(n_cameras)]
        self._failed = failed
        self._frozen = False
        self._period_ns = 0  # the set clock's period once set_rate was called

    @property
    def name(self) -> str:
        return self.state.name

    # --- the hold point ---------------------------------------------------------------

    def gather(self, rows: list[int], idle_frame: int, timeout_s: float = 5.0) -> int:
        """Raise the hold point until every camera in rows has published the same count;
        return it. With no camera in the gate the common frame is idle_frame."""
        state = self.state
        if not rows:
            state.globals[G_HOLD_AT] = idle_frame
            return idle_frame
        hold = int((state.counts[rows] + state.grabbing[rows]).max())
        state.globals[G_HOLD_AT] = hold
        return self._settle(rows, hold, time.monotonic() + timeout_s, timeout_s, follow=True)

    def gather_before(self, rows: list[int], moment_ns: int, timeout_s: float = 5.0) -> int:
        """Hold the group at a frame set due shortly before moment_ns (monotonic) and
        return it, for release_at(moment_ns) to make it the first set at that moment.
        GroupError when the group cannot be held before the moment (or has no clock)."""
        state = self.state
        period = self._period_ns
        if not rows or not period or self._frozen:
            raise GroupError("the cameras cannot start at a given moment "
                             + ("while the preview is frozen" if self._frozen else
                                "before they run"))
        ahead = int((state.counts[rows] + state.grabbing[rows]).max())
        sets_before = (moment_ns - time.monotonic_ns()) // period - _MOMENT_MARGIN_SETS
        hold = ahead + max(0, sets_before)
        state.globals[G_HOLD_AT] = hold
        wait_s = max(0.0, (moment_ns - time.monotonic_ns()) / 1e9) + timeout_s
        self._settle(rows, hold, time.monotonic() + wait_s, wait_s, follow=False)
        late_ns = time.monotonic_ns() + _RESTART_LEAD_NS - moment_ns
        if late_ns > 0:
            self.release()
            raise GroupError(f"the cameras were ready {late_ns / 1e6:.1f} ms too late for "
                             "the agreed start moment (give the rig a longer lead)")
        return hold

    def _settle(self, rows: list[int], hold: int, deadline: float, timeout_s: float, *,
                follow: bool) -> int:
        """Wait until every camera in rows has published `hold` frames and none grabs;
        with follow, a camera that passed the hold before it saw it moves the hold on."""
        state = self.state
        settled_checks = 0
        while settled_checks < 2:
            time.sleep(_FENCE_S if settled_checks else _GATHER_POLL_S)
            counts, grabbing = state.counts[rows], state.grabbing[rows]
            ahead = int((counts + grabbing).max())
            if ahead > hold:  # a camera passed the gate before it saw the hold
                if not follow:
                    self.release()
                    raise GroupError("a camera passed the frame the take was to start at")
                hold = ahead
                state.globals[G_HOLD_AT] = hold
            settled = bool((counts == hold).all() and not grabbing.any())
            settled_checks = settled_checks + 1 if settled else 0
            if time.monotonic() > deadline:
                failed = self._failed()
                self.release()
                raise GroupError(
                    "cameras did not reach a common frame within "
                    f"{timeout_s:.0f} s" + (f" (failed: {', '.join(failed)})" if failed else "")
                )
        return hold

    def hold_at(self, frame: int) -> None:
        """Let the group run up to (not including) frame, then hold."""
        self.state.globals[G_HOLD_AT] = frame

    def release(self) -> None:
        """Lower the hold point, unless the group is frozen. The set clock
        restarts at the hold frame: sets resume now, not at the moments missed meanwhile."""
        if self._frozen:
            return
        group = self.state.globals
        hold = int(group[G_HOLD_AT])
        if hold < PARKED and self._period_ns:  # not a camera parked while gathering
            self._anchor(hold)
        group[G_HOLD_AT] = NO_HOLD

    def release_at(self, moment_ns: int) -> None:
        """Lower the hold point with the held frame set due exactly at moment_ns
        (monotonic) and the next ones a period apart: a rig's nodes start their take on
        one agreed moment (see gather_before)."""
        group = self.state.globals
        group[G_SET_PERIOD_NS] = self._period_ns
        group[G_SET_ANCHOR_FRAME] = group[G_HOLD_AT]
        group[G_SET_ANCHOR_NS] = moment_ns - group[G_SET_SHIFT_NS]
        group[G_HOLD_AT] = NO_HOLD

    @property
    def rate(self) -> float:
        """The frame-set rate last set (0 before any)."""
        return 1e9 / self._period_ns if self._period_ns else 0.0

    def set_rate(self, fps: float) -> None:
        """The group's frame-set rate (its slowest camera's); takes effect at the next
        release, which every change of the cameras' rates comes before."""
        self._period_ns = round(1e9 / fps)

    def _anchor(self, frame: int) -> None:
        """Frame set `frame` is due at the next tick of the period grid on the monotonic
        clock (the grid a gated synthetic camera's schedule ticks on, too), and never
        sooner than a period after the set before it: a brief hold (a record start)
        leaves the sets' rhythm as it was, so no set repeats its predecessor's frame."""
        group = self.state.globals
        period = self._period_ns
        due = time.monotonic_ns() + _RESTART_LEAD_NS
        if group[G_SET_PERIOD_NS] == period:
            due = max(due, self.state.set_moment_ns(frame - 1) + period)
        group[G_SET_PERIOD_NS] = period
        group[G_SET_ANCHOR_FRAME] = frame
        group[G_SET_ANCHOR_NS] = -(-due // period) * period - group[G_SET_SHIFT_NS]

    def freeze(self, rows: list[int], idle_frame: int) -> bool:
        """Hold every camera at one frame until thaw (Freeze preview: no camera grabs, so
        the preview stands still and a take gets no frames); False if it already was."""
        if self._frozen:
            return False
        self.gather(rows, idle_frame)
        self._frozen = True
        return True

    def thaw(self) -> bool:
        """Release a frozen group; False if it was not frozen."""
        if not self._frozen:
            return False
        self._frozen = False
        self.release()
        return True

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def held(self) -> bool:
        """Frozen or gathered: no camera is expected to advance."""
        return self._frozen or int(self.state.globals[G_HOLD_AT]) != NO_HOLD

    # --- recording boundaries ------------------------------------------------------------

    def begin_take(self, first: int) -> None:
        self._no_pause()
        self.state.globals[G_LAST_RECORDING] = -1
        self.state.globals[G_FIRST_RECORDING] = first

    def pause_writing(self, frame: int) -> None:
        """Frames from `frame` on are captured but not recorded, until resume_writing. Set
        while the group is gathered at or before `frame`, so no camera has grabbed it yet:
        every camera flags the same frames. The end is opened first, so at no moment do
        the cells name a range that ends before it starts."""
        group = self.state.globals
        group[G_PAUSE_UNTIL] = NO_HOLD
        group[G_PAUSE_FROM] = frame

    def resume_writing(self, frame: int) -> None:
        """Frames from `frame` on are recorded again (the pause covered [from, frame)). Set
        while the group is gathered at or before `frame`."""
        self.state.globals[G_PAUSE_UNTIL] = frame

    def _no_pause(self) -> None:
        group = self.state.globals
        group[G_PAUSE_FROM] = NO_HOLD
        group[G_PAUSE_UNTIL] = NO_HOLD

    def end_take_at(self, last: int) -> None:
        self.state.globals[G_LAST_RECORDING] = last
        ring_all(self.doorbells)

    def cut(self, rows: list[int], first: int, chosen: int | None) -> int:
        """End a take now, at the last frame set every camera in rows has published (never
        before first, never later than an end already chosen); returns that frame."""
        last = max(int(self.state.counts[rows].min()), first) if rows else first
        if chosen is not None:
            last = min(last, chosen)
        self.end_take_at(last)
        return last

    def clear_take(self) -> None:
        self.state.globals[G_FIRST_RECORDING] = -1
        self.state.globals[G_LAST_RECORDING] = -1
        self._no_pause()

    # --- one camera's cells ----------------------------------------------------------------

    def park(self, index: int) -> int:
        """Neutral cells (ready, never the lowest count, not grabbing); returns the count
        the camera had."""
        cells = self.state.cameras[index]
        count = int(cells[C_COUNT])
        cells[C_COUNT] = PARKED
        cells[C_READY] = 1
        cells[C_GRABBING] = 0
        cells[C_ROOM] = NO_HOLD
        ring_all(self.doorbells)  # the sets it held back are complete now
        return count

    def place(self, index: int, frame: int) -> None:
        """A joining camera's next frame number."""
        self.state.cameras[index, C_COUNT] = frame

    def mark_failed(self, index: int) -> None:
        self.state.cameras[index, C_ERROR] = 1

    def command_sent(self, index: int) -> None:
        """Bump the camera's command counter so its loop reads the pipe."""
        self.state.cameras[index, C_COMMAND_SEQ] += 1

    def stop(self) -> None:
        self.state.globals[G_STOP] = 1
        ring_all(self.doorbells)

    def close(self) -> None:
        self.state.close()
        for doorbell in self.doorbells:
            doorbell.close()

    # --- reads -------------------------------------------------------------------------------

    def counts(self) -> np.ndarray:
        """Frames published per camera row, copied in one read so the values belong together."""
        return self.state.counts.copy()

    def dropped(self, index: int) -> int:
        return int(self.state.cameras[index, C_DROPPED])

    def spreads_ms(self, rows: list[int], start: int, end: int) -> np.ndarray:
        """Capture spread (ms) across rows of each frame set in [start, end) still in history."""
        start = max(start, end - GRAB_HISTORY // 2)
        if not rows or end <= start:
            return np.zeros(0)
        stamps = self.state.grab_ns[np.ix_(np.asarray(rows), np.arange(start, end) % GRAB_HISTORY)]
        return (stamps.max(axis=0) - stamps.min(axis=0)) / 1e6

    def lowest(self, rows: list[int]) -> int:
        """The frame count every camera in rows has reached."""
        return int(self.state.counts[rows].min()) if rows else 0
