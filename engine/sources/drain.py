"""A free-running capture kept drained by a thread of its own, so no backlog ever forms.

A network or USB camera keeps sending whether or not the sync gate lets its process
read, and what is not read piles up in the socket, the driver, FFmpeg's demuxer and the
decoder: the gate then keeps the frame counts equal while frame k of one file is seconds
older than frame k of another. FrameDrain reads every frame the moment it arrives (what
a bare reader costs) and keeps the last few with their capture times, so the camera
process can take, for each frame set, the frame captured nearest at or before the set's
moment (latch_at), even when it comes to look a few frames late. A reader may keep its
frames compressed (an intra-only stream such as MJPEG): only the frame a set takes is
then ever decoded (FrameReader.develop).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

# Frames kept: a camera process that comes up to this many frames late still finds the
# frame of its set's moment. Beyond that the group is overloaded and takes what is left.
DEPTH = 6


class FrameReader(Protocol):
    """One open stream, read frame by frame (by the drain's thread only)."""

    def read(self, spare: Any) -> tuple[Any, int] | None:
        """Block for the next frame: (picture, capture time in monotonic ns), or None when
        the stream ended or failed. `spare` is a picture the drain no longer needs (or
        None): a reader may decode into it instead of allocating."""

    def develop(self, picture: Any, out: np.ndarray) -> None:
        """Write a picture read() returned into `out` as BGR, decoding it if read() left
        it compressed. Called by the camera's thread, never for a picture being reused."""


class _Frame:
    __slots__ = ("captured_ns", "image", "sequence")

    def __init__(self, sequence: int, captured_ns: int, image: Any) -> None:
        self.sequence = sequence
        self.captured_ns = captured_ns
        self.image = image


class FrameDrain:
    """Reads `reader` on a daemon thread until stopped or the stream fails, keeping the
    newest `depth` frames."""

    def __init__(self, reader: FrameReader, name: str, depth: int = DEPTH) -> None:
        self._reader = reader
        self._depth = depth
        self._changed = threading.Condition()
        # Rung by the reading thread after each frame. An eventfd, not a lock: its write
        # is a system call made without the GIL, so the camera's thread wakes to a free
        # GIL (a lock's release wakes it while the reader holds the GIL, and both threads
        # then sleep and wake once more per frame handing it over).
        self._arrived = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._arrival_poll = select.poll()
        self._arrival_poll.register(self._arrived, select.POLLIN)
        self._rung = False  # a sleep ended by a ring not yet consumed
        self._frames: deque[_Frame] = deque()  # oldest first, at most DEPTH
        self._latched: _Frame | None = None  # the frame retrieve() copies; never reused
        self._lost_ns = -1  # capture time of the first frame dropped unseen since a latch
        self._sequence = 0  # frames decoded so far
        self._failed = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"drain-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        spare: Any = None  # the picture the next read may reuse: no allocation per frame
        while not self._stopping:
            frame = self._reader.read(spare)
            with self._changed:
                if frame is None:
                    self._failed = True
                    self._changed.notify_all()
                    self._announce()
                    return
                image, captured_ns = frame
                self._sequence += 1
                spare = None
                if len(self._frames) == self._depth:
                    oldest = self._frames.popleft()
                    latched = self._latched
                    unseen = latched is None or oldest.sequence > latched.sequence
                    if unseen and self._lost_ns < 0:
                        self._lost_ns = oldest.captured_ns
                    if oldest is not latched:
                        spare = oldest.image
                self._frames.append(_Frame(self._sequence, captured_ns, image))
                self._changed.notify_all()
            self._announce()

    def _announce(self) -> None:
        """Wake the camera's thread waiting for a frame (now, or at its next look)."""
        os.eventfd_write(self._arrived, 1)

    @property
    def sequence(self) -> int:
        """Frames decoded so far (the number of the newest one)."""
        return self._sequence

    def wait_newer(self, than: int, timeout_s: float) -> bool:
        """Block until a frame newer than sequence `than` exists; False if the stream
        failed or none came within timeout_s."""
        with self._changed:
            self._changed.wait_for(lambda: self._sequence > than or self._failed, timeout_s)
            return self._sequence > than

    def wait_past(self, moment_ns: int, deadline_ns: int) -> bool:
        """Block until a frame captured after moment_ns has arrived (frames arrive in
        order, so every frame of the moment is here then), or until deadline_ns; True
        when it has arrived. One thread waits here: the camera's."""
        frames = self._frames
        while not (frames and frames[-1].captured_ns > moment_ns):  # deque ends: atomic
            if not self._await_arrival(deadline_ns):
                return False
        return True

    def wait_for_set(self, moment_ns: int, limit_ns: int, deadline_ns: int) -> bool:
        """A camera's one wait for a set's frame: wait_past until deadline_ns (the latest
        the set waits), but not past limit_ns; True when the set can be latched now."""
        return (self.wait_past(moment_ns, min(deadline_ns, limit_ns)) or self._failed
                or limit_ns >= deadline_ns)

    def latch_for_set(self, moment_ns: int, deadline_ns: int) -> int:
        """Wait for the set's frame (at most until deadline_ns) and latch it (latch_at);
        the first set takes any frame that came. 0: nothing new (see failed, latched)."""
        self.wait_past(moment_ns, deadline_ns)
        sequence = self.latch_at(moment_ns)
        if not sequence and not self.latched and not self._failed:
            sequence = self.latch_newest()
        return sequence

    def wait_next(self, deadline_ns: int) -> bool:
        """Block until a frame newer than the latched one has arrived, or until
        deadline_ns; True when it has. One thread waits here: the camera's."""
        while self._sequence <= self.latched:
            if not self._await_arrival(deadline_ns):
                return False
        return True

    def _await_arrival(self, deadline_ns: int) -> bool:
        """Sleep until the next frame arrives, or return at once if one arrived since the
        last look; False once the deadline has passed or the stream failed. The ring
        that ends a sleep is consumed at the next look, when the reading thread is back
        in its read and wants no GIL."""
        remaining_ns = deadline_ns - time.monotonic_ns()
        if self._failed or remaining_ns <= 0:
            return False
        if self._rung:  # the ring that ended the last sleep, consumed now
            self._rung = False
            try:  # noqa: SIM105 - no context manager object per frame
                os.eventfd_read(self._arrived)
            except BlockingIOError:
                pass
            return True
        self._rung = bool(self._arrival_poll.poll(-(-remaining_ns // 1_000_000)))
        return True

    def latch_at(self, moment_ns: int) -> int:
        """Latch the frame for a frame set at moment_ns and return its sequence number:
        the newest frame captured at or before the moment that is newer than the one
        latched before; if frames of the moment were already dropped (the caller came
        too late), the oldest newer frame. 0: no such frame, the latched one repeats."""
        with self._changed:
            latched = self._latched
            after = latched.sequence if latched is not None else 0
            chosen: _Frame | None = None
            for frame in self._frames:  # oldest first
                if frame.sequence <= after:
                    continue
                if frame.captured_ns <= moment_ns:
                    chosen = frame
                elif chosen is None and 0 <= self._lost_ns <= moment_ns:
                    chosen = frame
                    break
                else:
                    break
            if chosen is None:
                return 0
            self._latched = chosen
            self._lost_ns = -1
            return chosen.sequence

    def latch_next(self, moment_ns: int,
                   is_key: Callable[[Any], bool]) -> tuple[int, bool]:
        """Latch the packet for a frame set of a stream recorded by copy, which may skip a
        packet only when the packet after it is a keyframe (nothing later refers to it):
        the packet after the one latched before, or the newest keyframe captured at or
        before the moment when the camera is ahead of the sets. When the packet
        after the latched one is gone (the first latch, or the camera process fell more
        than the drain's depth behind), the newest captured at or before the moment.
        Returns (sequence, whether it continues the latched packet's chain); (0, False):
        nothing new, the latched packet repeats."""
        with self._changed:
            frames = self._frames
            latched = self._latched
            after = latched.sequence if latched is not None else 0
            # Sequence numbers run on without gaps, oldest first: the oldest newer packet
            # is found by its number, not by walking the COPY_DEPTH_S kept behind it.
            first = after + 1 - frames[0].sequence if frames else 0
            if not frames or first >= len(frames):
                return 0, False
            chosen = frames[max(0, first)]  # the oldest newer packet: the next, if it is there
            follows = latched is not None and chosen.sequence == after + 1
            for position in range(max(0, first) + 1, len(frames)):
                frame = frames[position]
                if frame.captured_ns > moment_ns:
                    break
                if not follows or is_key(frame.image):
                    chosen = frame
            self._latched = chosen
            self._lost_ns = -1
            return chosen.sequence, follows

    def latched_captured_ns(self) -> int:
        """The capture time of the frame latched last (0 before the first latch)."""
        frame = self._latched
        return frame.captured_ns if frame is not None else 0

    def latched_picture(self) -> Any:
        """The picture (or packet) latched last; None before the first latch."""
        frame = self._latched
        return frame.image if frame is not None else None

    def latch_newest(self) -> int:
        """Latch the newest frame (0 if none has arrived); see latch_at."""
        return self.latch_at(2**63 - 1)

    def copy_latched(self, out: np.ndarray) -> int:
        """Develop the latched frame into out; return its capture time (monotonic ns).
        Outside the lock: the latched picture is never handed back to the reader, and only
        the caller's thread changes the latch."""
        with self._changed:
            frame = self._latched
        if frame is None:
            raise RuntimeError("no frame is latched yet")
        self._reader.develop(frame.image, out)
        return frame.captured_ns

    @property
    def latched(self) -> int:
        """The sequence number of the frame latched last (0: none yet), which a set with
        no newer frame uses again."""
        frame = self._latched
        return frame.sequence if frame is not None else 0

    @property
    def failed(self) -> bool:
        """The stream ended or failed: no frame will come any more."""
        return self._failed

    def stop(self, timeout_s: float) -> None:
        """End the thread; it finishes the read under way (at most the read timeout)."""
        self._stopping = True
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            os.close(self._arrived)
