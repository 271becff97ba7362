"""A free-running capture kept drained by a thread of its own, so no backlog ever forms.

A network camera keeps sending whether or not the sync gate lets its process read, and
what is not read piles up in the socket, FFmpeg's demuxer and the decoder: the gate then
keeps the frame counts equal while frame k of one file is seconds older than frame k of
another. FrameDrain reads every frame the moment it arrives (what a bare reader costs)
and keeps only the newest decoded one, with its arrival time on the monotonic clock; the
camera process copies that one into its ring slot when the gate lets it. Frames nobody
took are counted as skipped.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np


class FrameDrain:
    """Reads `cap` on a daemon thread until stopped or the stream fails."""

    def __init__(self, cap: cv2.VideoCapture, name: str) -> None:
        self._cap = cap
        self._changed = threading.Condition()
        self._latest: Any = None  # the newest decoded frame (BGR), owned under the lock
        self._arrived_ns = 0
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
                spare, self._latest = self._latest, image
                self._arrived_ns = arrived_ns
                self._sequence += 1
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

    def copy_newest(self, out: np.ndarray) -> tuple[int, int]:
        """Copy the newest frame into out; its sequence number and arrival (monotonic ns)."""
        with self._changed:
            image = self._latest
            if image is None:
                raise RuntimeError("no frame has arrived yet")
            if image.shape == out.shape:
                np.copyto(out, image)
            else:  # the stream changed size: keep the ring's geometry
                cv2.resize(image, (out.shape[1], out.shape[0]), dst=out)
            return self._sequence, self._arrived_ns

    def stop(self, timeout_s: float) -> None:
        """End the thread; it finishes the read under way (at most the read timeout)."""
        self._stopping = True
        self._thread.join(timeout_s)
