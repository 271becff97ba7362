"""A free-running capture kept drained by a thread of its own, so no backlog ever forms.

A network or USB camera keeps sending whether or not the sync gate lets its process
read, and what is not read piles up in the socket, the driver, FFmpeg's demuxer and the
decoder: the gate then keeps the frame counts equal while frame k of one file is seconds
older than frame k of another. FrameDrain reads every frame the moment it arrives (what
a bare reader costs) and keeps the last few decoded ones with their capture times, so
the camera process can take, for each frame set, the frame captured nearest at or
before the set's moment (latch_at), even when it comes to look a few frames late.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

# Frames kept: a camera process that comes up to this many frames late still finds the
# frame of its set's moment. Beyond that the group is overloaded and takes what is left.
DEPTH = 6

Stamp = Callable[[cv2.VideoCapture, int], int]
"""(capture, arrival ns) -> the frame's capture time on the monotonic clock (ns)."""


def arrival(_cap: cv2.VideoCapture, arrived_ns: int) -> int:
    """The capture time of a stream that tells nothing better: its arrival."""
    return arrived_ns


class _Frame:
    __slots__ = ("captured_ns", "image", "sequence")

    def __init__(self, sequence: int, captured_ns: int, image: Any) -> None:
        self.sequence = sequence
        self.captured_ns = captured_ns
        self.image = image


class FrameDrain:
    """Reads `cap` on a daemon thread until stopped or the stream fails."""

    def __init__(self, cap: cv2.VideoCapture, name: str, stamp: Stamp = arrival) -> None:
        self._cap = cap
        self._stamp = stamp
        self._changed = threading.Condition()
        self._frames: deque[_Frame] = deque()  # oldest first, at most DEPTH
        self._latched: _Frame | None = None  # the frame retrieve() copies; never reused
        self._lost_ns = -1  # capture time of the first frame dropped unseen since a latch
        self._sequence = 0  # frames decoded so far
        self._failed = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"drain-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        spare: Any = None  # the buffer the next read decodes into: no allocation per frame
        while not self._stopping:
            ok, image = self._cap.read(spare)
            arrived_ns = time.monotonic_ns()
            with self._changed:
                if not ok or image is None:
                    self._failed = True
                    self._changed.notify_all()
                    return
                self._sequence += 1
                captured_ns = self._stamp(self._cap, arrived_ns)
                spare = None
                if len(self._frames) == DEPTH:
                    oldest = self._frames.popleft()
                    latched = self._latched
                    unseen = latched is None or oldest.sequence > latched.sequence
                    if unseen and self._lost_ns < 0:
                        self._lost_ns = oldest.captured_ns
                    if oldest is not latched:
                        spare = oldest.image
                self._frames.append(_Frame(self._sequence, captured_ns, image))
                self._changed.notify_all()

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

    def wait_past(self, moment_ns: int, deadline_ns: int) -> None:
        """Block until a frame captured after moment_ns has arrived (frames arrive in
        order, so every frame of the moment is here then), or until deadline_ns."""
        with self._changed:
            while not self._failed and not (
                    self._frames and self._frames[-1].captured_ns > moment_ns):
                remaining_ns = deadline_ns - time.monotonic_ns()
                if remaining_ns <= 0:
                    return
                self._changed.wait(remaining_ns / 1e9)

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

    def latch_newest(self) -> int:
        """Latch the newest frame (0 if none has arrived); see latch_at."""
        return self.latch_at(2**63 - 1)

    def copy_latched(self, out: np.ndarray) -> int:
        """Copy the latched frame into out; return its capture time (monotonic ns)."""
        with self._changed:
            frame = self._latched
            if frame is None:
                raise RuntimeError("no frame is latched yet")
            image = frame.image
            if image.shape == out.shape:
                np.copyto(out, image)
            else:  # the stream changed size: keep the ring's geometry
                cv2.resize(image, (out.shape[1], out.shape[0]), dst=out)
            return frame.captured_ns

    @property
    def failed(self) -> bool:
        """The stream ended or failed: no frame will come any more."""
        return self._failed

    def stop(self, timeout_s: float) -> None:
        """End the thread; it finishes the read under way (at most the read timeout)."""
        self._stopping = True
        self._thread.join(timeout_s)
