"""When a network camera captured each frame, on the local monotonic clock.

An RTP stream stamps every frame with the camera's own media clock (90 kHz for video),
which FFmpeg hands on as presentation times (pts). Two things map it onto our clock:
- The camera's RTCP sender reports pair a media time with the camera's wall clock (NTP)
  at that instant. Where the camera's wall clock agrees with ours (both follow NTP or
  PTP), a frame's capture time is then known, network and pipeline delay included.
- Without usable reports: the frame that travelled fastest. offset = the smallest
  (arrival - pts) seen, and capture = pts + offset - the transit of that fastest frame
  as the last usable report showed it (0 if none ever did: then capture times carry the
  camera's constant delay).
"""

from __future__ import annotations

import time

RTP_WINDOW_NS = 10_000_000_000  # the fastest frame is looked for over two such windows
RTP_JUMP_NS = 2_000_000_000  # presentation times that jump further start a new mapping
NTP_TO_UNIX_S = 2_208_988_800  # seconds from 1900 (NTP's epoch) to 1970
# A report is believed when it puts the frame that carried it at most this long before
# its arrival, and not after it (beyond a little rounding): a camera whose wall clock
# is off by more cannot be mapped with it.
PLAUSIBLE_TRANSIT_NS = 2_000_000_000
ROUNDING_NS = 1_000_000
_NEVER = 2**63 - 1


def ntp_to_unix_ns(ntp: int) -> int:
    """A 64-bit NTP timestamp (32.32 fixed-point seconds since 1900) as Unix ns."""
    seconds, fraction = ntp >> 32, ntp & 0xFFFFFFFF
    return (seconds - NTP_TO_UNIX_S) * 1_000_000_000 + (fraction * 1_000_000_000 >> 32)


class RtpClock:
    """Maps a stream's presentation times onto the monotonic clock (see the module).

    A jump in the stream's times (a camera restart) starts a new mapping; so does reset()
    (a new connection), which keeps the transit learned from reports. Capture times never
    go back: while a mapping settles, a frame is given at least its predecessor's time.
    """

    def __init__(self) -> None:
        self._transit_ns = 0  # the fastest frame's true delay, from the last usable report
        self._calibrated = False  # a usable report came, on this connection or before
        self.reset()

    def reset(self) -> None:
        self._offsets = [_NEVER, _NEVER]  # the previous window's minimum, this one's
        self._window_end_ns = 0
        self._last_pts_ns: int | None = None
        self._last_captured_ns = 0
        self._reported_offset_ns: int | None = None  # monotonic ns at pts 0, from a report

    @property
    def reported(self) -> bool:
        """A sender report maps this connection's times (or an earlier one's did)."""
        return self._calibrated

    def sender_report(self, wall_ns: int, pts_ns: int, arrived_ns: int, carrier_pts_ns: int
                      ) -> bool:
        """Take a report: the camera's wall clock read wall_ns (Unix ns) at media time
        pts_ns. carrier_pts_ns / arrived_ns: the frame that brought it. False (and
        ignored) when the report would put that frame outside its plausible transit."""
        offset_ns = wall_ns - (time.time_ns() - time.monotonic_ns()) - pts_ns
        transit_ns = arrived_ns - (carrier_pts_ns + offset_ns)
        if not -ROUNDING_NS <= transit_ns < PLAUSIBLE_TRANSIT_NS:
            return False
        self._reported_offset_ns = offset_ns
        self._calibrated = True
        return True

    def capture_ns(self, pts_ns: int, arrived_ns: int) -> int:
        last_pts_ns = self._last_pts_ns
        if last_pts_ns is not None and not 0 <= pts_ns - last_pts_ns < RTP_JUMP_NS:
            self._offsets = [_NEVER, _NEVER]
            self._reported_offset_ns = None
        self._last_pts_ns = pts_ns
        if arrived_ns >= self._window_end_ns:
            self._offsets = [self._offsets[1], _NEVER]
            self._window_end_ns = arrived_ns + RTP_WINDOW_NS
        self._offsets[1] = min(self._offsets[1], arrived_ns - pts_ns)
        fastest_ns = min(self._offsets)
        if self._reported_offset_ns is not None:
            self._transit_ns = max(0, fastest_ns - self._reported_offset_ns)
            captured_ns = pts_ns + self._reported_offset_ns
        else:
            captured_ns = pts_ns + fastest_ns - self._transit_ns
        captured_ns = min(captured_ns, arrived_ns)  # a report's rounding cannot make it later
        self._last_captured_ns = max(captured_ns, self._last_captured_ns)
        return self._last_captured_ns
