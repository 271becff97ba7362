"""RtpClock: a network camera's presentation times onto the local monotonic clock, by
the fastest frame and by the camera's RTCP sender reports."""

from __future__ import annotations

import itertools
import time

import numpy as np

from engine.sources.rtp_clock import RtpClock, ntp_to_unix_ns

MS = 1_000_000
PERIOD = 33 * MS
JITTER_MS = [7, 0, 19, 3, 12, 5, 9, 1]


def wall_minus_monotonic() -> int:
    return time.time_ns() - time.monotonic_ns()


def test_rtp_times_map_onto_the_local_clock_by_the_fastest_frame():
    clock = RtpClock()
    # Frames every 33 ms on the camera's clock, arriving 50 ms later plus 0-20 ms jitter.
    captured = [clock.capture_ns(k * PERIOD, (1000 + 33 * k + 50 + JITTER_MS[k]) * MS)
                for k in range(5)]
    # From the fastest frame on (the second), no jitter is left; its delay stays in.
    assert np.diff(captured[1:]).tolist() == [PERIOD] * 3
    assert captured[1] == (1000 + 33 + 50) * MS
    assert captured[0] == (1000 + 50 + 7) * MS  # before it, the best delay known then
    assert not clock.reported
    # A burst of late frames, then a fast one: the mapping settles, times never go back.
    burst = RtpClock()
    settling = [burst.capture_ns(k * PERIOD, (1000 + 200 + 5 * k) * MS) for k in range(4)]
    settling.append(burst.capture_ns(4 * PERIOD, (1000 + 132 + 20) * MS))
    assert all(b >= a for a, b in itertools.pairwise(settling))
    # A restarted camera (its times jump back) starts a new mapping.
    assert clock.capture_ns(0, 5000 * MS) == 5000 * MS


def test_a_sender_report_gives_the_true_capture_time_delay_included():
    """The camera's clock agrees with ours: frames captured at 1000 + 33k ms arrive 50 ms
    (plus jitter) later; the report says pts 0 is that moment."""
    clock = RtpClock()
    true_ns = [(1000 + 33 * k) * MS for k in range(8)]
    arrivals = [t + (50 + j) * MS for t, j in zip(true_ns, JITTER_MS, strict=True)]
    assert clock.sender_report(true_ns[0] + wall_minus_monotonic(), 0, arrivals[0], 0)
    captured = [clock.capture_ns(k * PERIOD, arrivals[k]) for k in range(8)]
    assert all(abs(c - t) <= MS for c, t in zip(captured, true_ns, strict=True))
    assert clock.reported
    # A new connection (new RTP time line, no report yet) keeps the transit it learned:
    # the fastest frame's 50 ms come off, where the fastest-frame mapping alone keeps them.
    clock.reset()
    later = [(9000 + 33 * k) * MS for k in range(8)]
    mapped = [clock.capture_ns(k * PERIOD, t + (50 + j) * MS)
              for k, (t, j) in enumerate(zip(later, JITTER_MS, strict=True))]
    assert all(abs(c - t) <= MS for c, t in zip(mapped[1:], later[1:], strict=True))


def test_a_report_from_a_camera_whose_clock_is_off_is_not_believed():
    clock = RtpClock()
    arrived = 1050 * MS
    clock.capture_ns(0, arrived)
    an_hour_ahead = 1000 * MS + wall_minus_monotonic() + 3600 * 10**9
    assert not clock.sender_report(an_hour_ahead, 0, arrived, 0)
    assert not clock.sender_report(1000 * MS + wall_minus_monotonic() - 10 * 10**9, 0,
                                   arrived, 0)  # ten seconds behind
    assert not clock.reported
    assert clock.capture_ns(PERIOD, arrived + PERIOD) == arrived + PERIOD  # fastest frame


def test_ntp_time_reads_as_unix_time():
    assert ntp_to_unix_ns(2_208_988_800 << 32) == 0
    assert ntp_to_unix_ns((2_208_988_801 << 32) | (1 << 31)) == 1_500_000_000
