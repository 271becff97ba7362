"""FrameDrain's choice of frame for a frame set's moment, on a scripted stream, and how
long a drained camera's set may keep the others waiting."""

from __future__ import annotations

import queue
import time
from typing import Any

import numpy as np
import pytest

from engine.sources import Kind, SourceKind
from engine.sources.base import Latch
from engine.sources.drain import DEPTH, FrameDrain
from engine.sources.drained import LATCH_WAIT_PERIODS, DrainedSource
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


def test_a_copy_camera_takes_its_packets_in_order_and_skips_only_to_a_keyframe(stream):
    """latch_next: the packet after the latched one while the camera keeps up; when it is
    ahead of the sets, the newest keyframe at or before the moment (nothing later refers
    to the packets it skips); when the next packet is gone, the newest at the moment."""
    capture, drain = stream
    keys = {1, 14}

    def is_key(picture: np.ndarray) -> bool:
        return int(picture[0, 0, 0]) in keys

    feed(capture, drain, [(n, n * 33 * MS) for n in range(1, 4)])
    assert drain.latch_next(10 * MS, is_key) == (1, False)  # the first: any, no chain before
    assert drain.latch_next(10 * MS, is_key) == (2, True)  # the next, though after the moment
    assert drain.latch_next(200 * MS, is_key) == (3, True)
    assert drain.latch_next(200 * MS, is_key) == (0, False)  # nothing newer: it repeats
    feed(capture, drain, [(n, n * 33 * MS) for n in range(4, 8)])
    # Ahead of the moment (6) by two packets but no keyframe among them: 4 is the next.
    assert drain.latch_next(6 * 33 * MS, is_key) == (4, True)
    # Four more arrive unseen and the drain keeps DEPTH: 5 is gone, so the chain breaks
    # and the set takes the newest packet at or before its moment.
    assert DEPTH == 6
    feed(capture, drain, [(n, n * 33 * MS) for n in range(8, 12)])
    assert drain.latch_next(10 * 33 * MS, is_key) == (10, False)
    # Ahead again with keyframe 14 among the packets: the set skips to it.
    feed(capture, drain, [(n, n * 33 * MS) for n in range(12, 17)])
    assert drain.latch_next(15 * 33 * MS, is_key) == (14, True)
    assert latched(drain) == 14


def test_waiting_past_the_moment_ends_when_a_later_frame_arrives(stream):
    capture, drain = stream
    feed(capture, drain, [(1, 100 * MS)])
    started = time.monotonic()
    capture.feed.put((2, 140 * MS))
    drain.wait_past(120 * MS, time.monotonic_ns() + 5_000_000_000)
    assert time.monotonic() - started < 2
    assert drain.latch_at(120 * MS) and latched(drain) == 1


def test_waiting_for_the_next_frame_ends_when_it_arrives_or_at_the_deadline(stream):
    """A copy camera takes its next packet as soon as it is here."""
    capture, drain = stream
    feed(capture, drain, [(1, 100 * MS)])
    drain.latch_newest()
    assert not drain.wait_next(time.monotonic_ns() + 50 * MS)  # nothing newer came
    started = time.monotonic()
    capture.feed.put((2, 140 * MS))
    assert drain.wait_next(time.monotonic_ns() + 5_000_000_000)
    assert time.monotonic() - started < 2 and drain.sequence == 2


def test_a_driver_stamp_counts_only_on_the_monotonic_clock():
    now = time.monotonic_ns()
    assert plausible_stamp(now - 5 * MS, now)
    assert not plausible_stamp(now + 5 * MS, now)  # after its arrival
    assert not plausible_stamp(time.time_ns(), now)  # the wall clock
    assert not plausible_stamp(0, now)  # counting from zero


# -- a drained camera's sets: never a wait longer than a few of its frame periods --------

FPS = 20.0
PERIOD_NS = round(1e9 / FPS)


class ScriptedSource(DrainedSource):
    """A free-running camera at FPS whose stream the test scripts."""

    def __init__(self, capture: ScriptedCapture) -> None:
        self.capture = capture
        super().__init__(SourceKind(Kind.NETWORK, "scripted"), 2, 2, FPS)

    def _default_options(self) -> dict[str, Any]:
        return {"read_timeout_ms": 10_000}  # far longer than any set may wait

    def open(self) -> None:
        self._start_drain()

    def _reader(self) -> ScriptedCapture:
        return self.capture

    def close(self) -> None:
        self.capture.feed.put(None)
        super().close()


@pytest.fixture
def scripted():
    capture = ScriptedCapture()
    source = ScriptedSource(capture)
    source.open()
    yield capture, source
    source.close()


def timed_latch(source: ScriptedSource, moment_ns: int) -> tuple[Latch, float]:
    started = time.monotonic_ns()
    latch = source.latch_at(moment_ns)
    return latch, (time.monotonic_ns() - started) / PERIOD_NS


def test_a_set_after_the_stream_fails_fails_at_once(scripted):
    """The camera leaves the sync gate on FAILED; it must not wait (nor reconnect) first."""
    capture, source = scripted
    now = time.monotonic_ns()
    capture.feed.put((1, now))
    assert source.latch_at(now) is Latch.NEW
    capture.feed.put(None)  # the connection closed
    wait_for(lambda: source._drain is not None and source._drain.failed, 5, "the drain failed")
    latch, periods = timed_latch(source, time.monotonic_ns())
    assert latch is Latch.FAILED and periods < 1


def test_a_silent_stream_repeats_the_last_frame_after_the_latch_wait(scripted):
    capture, source = scripted
    now = time.monotonic_ns()
    capture.feed.put((1, now))
    assert source.latch_at(now) is Latch.NEW
    for n in range(1, 4):  # silent, not failed: every set repeats, none waits longer
        latch, periods = timed_latch(source, now + n * PERIOD_NS)
        assert latch is Latch.REPEAT and periods < n + LATCH_WAIT_PERIODS + 1


def test_a_first_set_without_any_frame_fails_instead_of_waiting_for_one(scripted):
    """Before, it waited for the read timeout (seconds) while every other camera waited."""
    _capture, source = scripted
    latch, periods = timed_latch(source, time.monotonic_ns())
    assert latch is Latch.FAILED and periods < LATCH_WAIT_PERIODS + 2


def test_a_first_set_takes_a_frame_captured_after_its_moment_rather_than_none(scripted):
    capture, source = scripted
    moment = time.monotonic_ns()
    capture.feed.put((7, moment + PERIOD_NS // 2))
    assert source.latch_at(moment) is Latch.NEW
    out = np.zeros((2, 2, 3), np.uint8)
    source.retrieve(out, 0)
    assert out[0, 0, 0] == 7
