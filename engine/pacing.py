"""Deadline pacing shared by the synthetic source and file replay.

Frames are due on an absolute schedule, like a free-running sensor's, so pacing
never drifts with the caller's own processing time.
"""

from __future__ import annotations

import math
import time


class DeadlinePacer:
    """Releases one frame per period on an absolute schedule (next = previous + period).

    An absolute schedule does not drift with the caller's own processing time. When
    the caller comes back more than one period late, the deadlines it missed are
    reported and the schedule jumps forward instead of bursting to catch up.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._next: float | None = None
        self.deadline = 0.0  # the one wait() last returned at (s, monotonic): missed skipped

    def reset(self) -> None:
        """Restart the schedule at the next wait()."""
        self._next = None

    def wait(self) -> int:
        """Sleep until the next deadline; return how many deadlines were missed.

        A fresh schedule starts on the next whole multiple of the period on the
        system-wide monotonic clock, so every pacer of one rate ticks in phase,
        like cameras on a shared hardware trigger.
        """
        now = time.monotonic()
        if self._next is None:
            self._next = (math.floor(now / self.period) + 1) * self.period
        missed = 0
        if now < self._next:
            _sleep_until(self._next)
        else:
            missed = int((now - self._next) // self.period)
            self._next += missed * self.period
        self.deadline = self._next
        self._next += self.period
        return missed

    def stall(self, seconds: float) -> None:
        """Sleep without the lost time counting as missed deadlines (a slow device)."""
        time.sleep(seconds)
        if self._next is not None:
            self._next = max(self._next, time.monotonic())


def sleep_until_ns(moment_ns: int) -> None:
    """Sleep until moment_ns on time.monotonic_ns's clock (at once if it has passed)."""
    remaining = moment_ns - time.monotonic_ns()
    if remaining > 0:
        time.sleep(remaining / 1e9)


def sleep_toward_ns(moment_ns: int, limit_ns: int) -> bool:
    """Sleep until moment_ns, at most until limit_ns; True when the moment has come."""
    sleep_until_ns(min(moment_ns, limit_ns))
    return limit_ns >= moment_ns


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
