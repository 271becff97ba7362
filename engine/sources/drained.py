"""A free-running camera read by a FrameDrain: USB cameras and network streams.

No backlog forms while the group waits, is held or is slower, and each frame set takes
the frame captured nearest at or before its moment. Frames no set took count as
`dropped` (skipped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.sources.base import Latch, SourceError
from engine.sources.configured import ConfiguredSource
from engine.sources.drain import FrameDrain, FrameReader

# How long a set waits for a later frame to prove none is missing: also the longest the
# other cameras ever wait on this one for a frame set.
LATCH_WAIT_PERIODS = 3


def latch_deadline_ns(moment_ns: int, fps: float) -> int:
    """The latest a set at moment_ns waits for a frame captured after the moment."""
    return moment_ns + round(LATCH_WAIT_PERIODS * 1e9 / fps)


class DrainedSource(ConfiguredSource):
    """Subclasses open the device and hand the drain its reader (_reader)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._drain: FrameDrain | None = None
        self._taken = 0  # the drain's sequence number of the frame last latched
        self._skipped = 0
        self._captured_ns = 0  # capture time of the frame last retrieved
        super().__init__(*args, **kwargs)

    @property
    def free_running(self) -> bool:
        return True

    def grab(self) -> bool:
        """Latch the newest frame, waiting (at most the read timeout) for one newer than
        the last latched; False when the stream failed or stayed silent that long."""
        drain = self._drain
        if drain is None or not drain.wait_newer(self._taken, self._read_timeout_s()):
            return False
        self._took(drain.latch_newest())
        return True

    def wait_for_moment(self, moment_ns: int, limit_ns: int) -> bool:
        """One wait for the frame of the moment (a frame captured after it has arrived, at
        most LATCH_WAIT_PERIODS after it: latch_at's own wait), not a sleep until the moment
        followed by a second wait for the frame."""
        drain = self._drain
        if drain is None:
            return True  # latch_at says FAILED
        return drain.wait_for_set(moment_ns, limit_ns, self._latch_deadline_ns(moment_ns))

    def _latch_deadline_ns(self, moment_ns: int) -> int:
        return latch_deadline_ns(moment_ns, float(self._actual.get("fps")
                                                  or self._requested["fps"]))

    def latch_at(self, moment_ns: int) -> Latch:
        """The frame captured nearest at or before the moment, decided once a frame
        captured after it has arrived (delivery jitter cannot change the choice then),
        waiting at most LATCH_WAIT_PERIODS of this camera's own frame period. It never
        waits longer, so the other cameras never wait on this one for more: with no new
        frame, the previous one repeats (REPEAT); with none to repeat (nothing came since
        the stream was opened) or a stream that failed (the reader's error, its end, or
        silence for the read timeout), FAILED at once: the camera leaves the sync gate
        and reconnects outside it (reconnect(), where the source can)."""
        drain = self._drain
        if drain is None:
            return Latch.FAILED
        sequence = drain.latch_for_set(moment_ns, self._latch_deadline_ns(moment_ns))
        if sequence:
            self._took(sequence)
            return Latch.NEW
        if drain.failed or not drain.latched:
            return Latch.FAILED
        return Latch.REPEAT

    def _took(self, sequence: int) -> None:
        self._skipped += max(0, sequence - self._taken - 1)
        self._taken = sequence

    def _read_timeout_s(self) -> float:
        return float(self._options["read_timeout_ms"]) / 1000

    def retrieve(self, out: np.ndarray, frame_number: int) -> None:
        if self._drain is None:
            raise SourceError(f"{self.kind_label} {self.name} is not open")
        self._captured_ns = self._drain.copy_latched(out)

    def flush(self) -> None:
        """Frames that arrived while the group was held are not skipped ones."""
        if self._drain is not None:
            self._taken = self._drain.sequence

    @property
    def dropped(self) -> int:
        """Frames the camera delivered that no frame set used."""
        return self._skipped

    def capture_ns(self) -> int | None:
        return self._captured_ns or None

    def close(self) -> None:
        self._stop_drain()
        super().close()

    def _reader(self) -> FrameReader:
        """A reader of the open device, for a new drain."""
        raise NotImplementedError

    def _start_drain(self) -> None:
        self._drain = FrameDrain(self._reader(), self.name)
        self._taken = 0

    def _stop_drain(self) -> None:
        """Stop reading; the read under way ends within the read timeout."""
        if self._drain is not None:
            self._drain.stop(self._read_timeout_s() + 1.0)
            self._drain = None
