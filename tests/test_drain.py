"""FrameDrain's choice of frame for a frame set's moment, on a scripted stream."""

from __future__ import annotations

import itertools
import queue
import time

import numpy as np
import pytest

from engine.sources.drain import DEPTH, FrameDrain
from engine.sources.opencv_source import RtpClock, plausible_stamp
from tests.waiting import wait_for

MS = 1_000_000


class ScriptedCapture:
    """A VideoCapture stand-in: read() returns the next frame the test feeds, whose pixels
    hold its number; its capture time is what the test says (through stamp())."""

    def __init__(self) -> None:
        self.feed: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self.captured_ns = 0

    def read(self, _spare: object = None) -> tuple[bool, np.ndarray | None]:
        item = self.feed.get()
        if item is None:
            return False, None
        number, self.captured_ns = item
        return True, np.full((2, 2, 3), number, np.uint8)

    def stamp(self, _cap: object, _arrived_ns: int) -> int:
        return self.captured_ns


@pytest.fixture
def stream():
    capture = ScriptedCapture()
    drain = FrameDrain(capture, "scripted", capture.stamp)  # type: ignore[arg-type]
    yield capture, drain
    capture.feed.put(None)
    drain.stop(2.0)


def feed(capture: ScriptedCapture, drain: FrameDrain, frames: list[tuple[int, int]]) -> None:
    target = drain.sequence + len(frames)
    for frame in frames:
        capture.feed.put(frame)
    wait_for(lambda: drain.sequence >= target, 5, "the frames to be read")


def latched(drain: FrameDrain) -> int:
    out = np.zeros((2, 2, 3), np.uint8)
    drain.copy_latched(out)
    return int(out[0, 0, 0])


def test_a_set_takes_the_newest_frame_captured_at_or_before_its_moment(stream):
    capture, drain = stream
    feed(capture, drain, [(1, 100 * MS), (2, 133 * MS), (3, 166 * MS)])
    assert drain.latch_at(150 * MS) and latched(drain) == 2
    assert drain.latch_at(150 * MS) == 0  # nothing new at or before it: the set repeats
    assert latched(drain) == 2
    assert drain.latch_at(170 * MS) and latched(drain) == 3


def test_a_late_set_takes_the_oldest_frame_left_when_its_own_was_dropped(stream):
    capture, drain = stream
    feed(capture, drain, [(1, 100 * MS)])
    assert drain.latch_at(100 * MS) and latched(drain) == 1
    # DEPTH + 2 more frames arrive before the next set looks: frames 2 and 3 are gone.
    feed(capture, drain, [(n, (100 + 33 * (n - 1)) * MS) for n in range(2, DEPTH + 4)])
    assert drain.latch_at(140 * MS) and latched(drain) == 4


def test_waiting_past_the_moment_ends_when_a_later_frame_arrives(stream):
    capture, drain = stream
    feed(capture, drain, [(1, 100 * MS)])
    started = time.monotonic()
    capture.feed.put((2, 140 * MS))
    drain.wait_past(120 * MS, time.monotonic_ns() + 5_000_000_000)
    assert time.monotonic() - started < 2
    assert drain.latch_at(120 * MS) and latched(drain) == 1


def test_rtp_times_map_onto_the_local_clock_by_the_fastest_frame():
    clock = RtpClock()
    # Frames every 33 ms on the camera's clock, arriving 50 ms later plus 0-20 ms jitter.
    jitter = [7, 0, 19, 3, 12]
    captured = [clock.capture_ns(33.0 * k, (1000 + 33 * k + 50 + jitter[k]) * MS)
                for k in range(5)]
    # From the fastest frame on (the second), no jitter is left; its delay stays in.
    assert np.diff(captured[1:]).tolist() == [33 * MS] * 3
    assert captured[1] == (1000 + 33 + 50) * MS
    assert captured[0] == (1000 + 50 + 7) * MS  # before it, the best delay known then
    # A burst of late frames, then a fast one: the mapping settles, times never go back.
    burst = RtpClock()
    settling = [burst.capture_ns(33.0 * k, (1000 + 200 + 5 * k) * MS) for k in range(4)]
    settling.append(burst.capture_ns(33.0 * 4, (1000 + 132 + 20) * MS))
    assert all(b >= a for a, b in itertools.pairwise(settling))
    # A restarted camera (its times jump back) starts a new mapping.
    assert clock.capture_ns(0.0, 5000 * MS) == 5000 * MS


def test_a_driver_stamp_counts_only_on_the_monotonic_clock():
    now = time.monotonic_ns()
    assert plausible_stamp(now - 5 * MS, now)
    assert not plausible_stamp(now + 5 * MS, now)  # after its arrival
    assert not plausible_stamp(time.time_ns(), now)  # the wall clock
    assert not plausible_stamp(0, now)  # counting from zero
