"""FrameDrain's choice of frame for a frame set's moment, on a scripted stream."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from engine.sources.drain import DEPTH, FrameDrain
from engine.sources.opencv_source import plausible_stamp
from tests.waiting import wait_for

MS = 1_000_000


class ScriptedCapture:
    """A FrameReader: read() returns the next frame the test feeds, whose pixels hold its
    number, with the capture time the test says."""

    def __init__(self) -> None:
        self.feed: queue.Queue[tuple[int, int] | None] = queue.Queue()

    def read(self, _spare: object = None) -> tuple[np.ndarray, int] | None:
        item = self.feed.get()
        if item is None:
            return None
        number, captured_ns = item
        return np.full((2, 2, 3), number, np.uint8), captured_ns

    def develop(self, picture: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, picture)


@pytest.fixture
def stream():
    capture = ScriptedCapture()
    drain = FrameDrain(capture, "scripted")
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


def test_a_driver_stamp_counts_only_on_the_monotonic_clock():
    now = time.monotonic_ns()
    assert plausible_stamp(now - 5 * MS, now)
    assert not plausible_stamp(now + 5 * MS, now)  # after its arrival
    assert not plausible_stamp(time.time_ns(), now)  # the wall clock
    assert not plausible_stamp(0, now)  # counting from zero
