"""ArrivalClock: capture times of an untimed camera (MJPEG over HTTP) from arrivals that
carry delivery jitter, stalls and bursts, against the camera's true capture times."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sources.arrival_clock import ArrivalClock

MS = 1_000_000
START_NS = 5_000_000_000_000  # monotonic ns of a machine up for over an hour
QUICKEST_MS = 4.0  # the camera's constant delay: what a capture time keeps


def camera(seconds: float, fps: float, seed: int, missed: float = 0.01
           ) -> tuple[np.ndarray, np.ndarray]:
    """True capture times of a free-running camera with its own clock (fps is its real
    rate), the frames it missed left out, and their arrivals: a constant delay plus
    delivery jitter with a long tail."""
    rng = np.random.default_rng(seed)
    captured = START_NS + np.arange(round(seconds * fps)) * (1e9 / fps)
    captured = captured[rng.random(len(captured)) >= missed]
    jitter_ms = rng.exponential(2.0, len(captured)) + (rng.random(len(captured)) < 0.02) * 15
    arrived = captured + (QUICKEST_MS + jitter_ms) * MS
    return captured.astype(np.int64), arrived.astype(np.int64)


def timed(clock: ArrivalClock, arrived: np.ndarray) -> np.ndarray:
    return np.array([clock.capture_ns(int(a)) for a in arrived], np.int64)


@pytest.mark.parametrize("fps, declared", [(25.0, 25.0), (24.9, 25.0), (30.03, 29.97)])
def test_late_frames_keep_their_own_capture_time(fps, declared):
    """The camera's real rate differs from the starting period by up to 0.4 %; after
    its first 3 s every capture time is the true one plus the camera's constant
    delay, within a fraction of a millisecond, while arrivals scatter over 20 ms."""
    captured, arrived = camera(60, fps, seed=7)
    times = timed(ArrivalClock(1e9 / declared), arrived)
    error_ms = (times - captured) / MS - QUICKEST_MS
    settled = error_ms[round(3 * fps):]
    arrival_error_ms = (arrived - captured)[round(5 * fps):] / MS - QUICKEST_MS
    assert np.percentile(arrival_error_ms, 99) > 15  # what arrival times would carry
    assert np.percentile(np.abs(settled), 99) < 0.5, np.percentile(np.abs(settled), [50, 99])
    assert np.all(np.diff(times) >= 0)
    assert np.all(times <= arrived)


def test_a_frame_almost_a_period_late_keeps_its_own_slot():
    """Three frames in a hundred come 60-88 % of a period late (a loaded machine). Each
    that came less than 90 % of a period late keeps its own capture time; one later than
    that is given no time after its arrival; none moves the line for the frames after."""
    fps = 25.0
    captured, arrived = camera(60, fps, seed=11, missed=0.0)
    rng = np.random.default_rng(12)
    late = rng.random(len(arrived)) < 0.03
    arrived[late] += (rng.uniform(0.6, 0.88, late.sum()) * 1e9 / fps).astype(np.int64)
    times = timed(ArrivalClock(1e9 / fps), arrived)
    settled = slice(round(3 * fps), None)
    error_ms = ((times - captured) / MS - QUICKEST_MS)[settled]
    lateness = ((arrived - captured) / MS - QUICKEST_MS)[settled] / (1000 / fps)
    assert late[settled].sum() > 40 and (lateness >= 0.9).sum() > 5  # both kinds happen
    assert np.max(np.abs(error_ms[lateness < 0.9])) < 0.5
    assert np.all(times <= arrived)


def test_a_stall_and_its_burst_do_not_move_later_frames():
    """The sender stalls for 200 ms and then sends the frames it held at once: the
    burst's newest frame gets its true time, older ones no later than it, and the frames
    after the burst are timed as before it."""
    fps = 30.0
    captured, arrived = camera(20, fps, seed=3, missed=0.0)
    stall = slice(300, 306)  # frames 300..305 held until frame 305 is sent
    arrived[stall] = arrived[305]
    times = timed(ArrivalClock(1e9 / fps), arrived)
    error_ms = (times - captured) / MS - QUICKEST_MS
    assert abs(error_ms[305]) < 1.0
    assert np.all(times[stall] <= times[305])
    assert np.percentile(np.abs(error_ms[306:]), 99) < 1.0
    assert np.percentile(np.abs(error_ms[150:300]), 99) < 1.0


def test_a_silence_starts_a_new_line_with_the_period_kept():
    """A camera restarted (its clock in a new phase) after 5 s of silence: its frames
    are timed on a new line from their own arrivals, with the period learned before."""
    fps = 25.0
    _, first_arrived = camera(10, fps, seed=1, missed=0.0)
    second_captured, second_arrived = camera(10, fps, seed=2, missed=0.0)
    shift = int(15e9 + 13 * MS)  # 5 s after the first run ends, 13 ms out of phase
    clock = ArrivalClock(1e9 / 25.2)
    timed(clock, first_arrived)
    times = timed(clock, second_arrived + shift)
    error_ms = (times - second_captured - shift) / MS - QUICKEST_MS
    assert clock.period_ns == pytest.approx(40 * MS, rel=1e-4)
    assert np.percentile(np.abs(error_ms[round(2 * fps):]), 99) < 1.0


def test_reset_starts_from_the_next_arrival():
    clock = ArrivalClock(40 * MS)
    clock.capture_ns(START_NS)
    clock.reset()
    assert clock.capture_ns(START_NS - 10 * MS) == START_NS - 10 * MS  # a new connection
