"""The frame clock of a free-running camera, simulated without a thread.

A real camera exposes frames on its own crystal whether or not anyone reads them: its
rate is a little off the nominal one, each frame reaches the computer a little after it
was captured (by a varying delay), and now and then the sensor misses one. Frame i of
this clock is captured at t0 + i / rate and delivered up to jitter later, unless
missed(i); the delays and misses are a pure function of (seed, i), so the newest frame
at any moment is computed, not queued, and a seeded clock replays the same schedule
whatever the caller does.
"""

from __future__ import annotations

import math
import time

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_JITTER, _MISS = 1, 2  # salts: independent random streams of one seed


def _mixed(z: int) -> int:
    """SplitMix64's finalizer: 64 bits whose every bit depends on every bit of z."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _stream_key(seed: int, salt: int) -> int:
    """The key of one random stream. Hashed, so the streams of neighbouring seeds (the
    cameras of a rig) and of one seed's salts are unrelated: unhashed, each was the
    other shifted by a few frames, and every camera missed a frame a few frames after
    the one before it."""
    return _mixed((seed * 4 + salt) * _GOLDEN & _MASK)


def _unit(key: int, index: int) -> float:
    """A uniform number in [0, 1) for (key, index): SplitMix64, no state, no allocation."""
    return (_mixed((key + (index + 1) * _GOLDEN) & _MASK) >> 11) / float(1 << 53)


def max_jitter_ms(rate: float) -> float:
    """Delivery delays must stay below half a period, so frames arrive in order."""
    return 500.0 / rate


class FreeClock:
    """Frames captured at `rate` per second from start(), delivered within jitter after
    their capture, some missed.

    take() hands out the newest frame delivered since the last one taken, sleeping only
    while there is none yet; take_at(moment) the newest captured at or before a moment.
    A caller that comes back late never sees the frames delivered meanwhile (they are
    skipped, as on a real camera), and never a backlog.
    """

    def __init__(self, rate: float, jitter_ms: float, miss_probability: float,
                 seed: int) -> None:
        if jitter_ms >= max_jitter_ms(rate):
            raise ValueError(f"jitter {jitter_ms} ms is not below half a period at {rate} fps")
        self.rate = rate
        self._period_ns = 1e9 / rate
        self._jitter_ns = jitter_ms * 1e6
        self._miss = miss_probability
        self._jitter_key = _stream_key(seed, _JITTER)
        self._miss_key = _stream_key(seed, _MISS)
        self._t0 = 0
        self._first = 0
        self._last = -1

    def start(self, now_ns: int | None = None, first_number: int = 0) -> None:
        """The first frame is captured now (or at now_ns) and numbered first_number, so a
        clock started again after a settings change continues its count; nothing is
        taken yet."""
        self._t0 = time.monotonic_ns() if now_ns is None else now_ns
        self._first = first_number
        self._last = -1

    def captured_ns(self, index: int) -> int:
        """When frame `index` was (or will be) captured, on time.monotonic_ns's clock."""
        return self._t0 + round(index * self._period_ns)

    def delivered_ns(self, index: int) -> int:
        """When frame `index` reaches the caller: its capture plus a delay in [0, jitter)."""
        return self.captured_ns(index) + round(_unit(self._jitter_key, index) * self._jitter_ns)

    def missed(self, index: int) -> bool:
        """The sensor skipped this frame: it is never delivered, its number stays unused."""
        return self._miss > 0 and _unit(self._miss_key, index) < self._miss

    def newest(self, now_ns: int) -> int:
        """The newest frame delivered by now_ns that was not taken yet, or -1 if none."""
        # Delays are below half a period, so no frame after this one can be out yet.
        index = math.floor((now_ns - self._t0) / self._period_ns) + 1
        while index > self._last:
            if not self.missed(index) and self.delivered_ns(index) <= now_ns:
                return index
            index -= 1
        return -1

    def take(self) -> tuple[int, int]:
        """(frame number, capture time in ns) of the newest frame, waiting for one if needed.

        The frame number counts from start()'s first_number, missed frames included."""
        index = self.newest(time.monotonic_ns())
        if index < 0:
            index = self._next_unmissed(self._last + 1)
        return self._took(index)

    def take_at(self, moment_ns: int) -> tuple[int, int] | None:
        """(frame number, capture time in ns) of the newest frame captured at or before
        moment_ns and not taken yet, waiting for its delivery if needed; None when there
        is none (the last one repeats)."""
        index = math.floor((moment_ns - self._t0) / self._period_ns)
        while index > self._last and (self.missed(index) or index < 0):
            index -= 1
        if index <= self._last:
            return None
        return self._took(index)

    def _next_unmissed(self, index: int) -> int:
        while self.missed(index):
            index += 1
        return index

    def _took(self, index: int) -> tuple[int, int]:
        """Wait until frame index is delivered, then hand it out."""
        remaining = self.delivered_ns(index) - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)
        self._last = index
        return self._first + index, self.captured_ns(index)
