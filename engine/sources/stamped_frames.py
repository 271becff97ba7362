"""Frames of a stand-in camera, each stamped with the moment it is made (or was due).

Shared by the stand-in servers' own processes (engine/bench/rtsp_stamped_server.py under
the system Python, which has no cv2; tests/stamped_feed.py under the venv's), so it needs
only numpy and engine.sources.clockstamp. The stamp is burned when the frame is made:
that moment is the frame's true capture time, whatever queue it then waits in. A stand-in
for a camera whose sensor exposes on its own steady clock stamps the moment the frame was
due instead: a loaded machine then delays its delivery, as it would a real camera's, not
its exposure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from engine.pacing import DeadlinePacer
from engine.sources import clockstamp


class StampedFrames:
    """BGR frames of one size: a grey ramp under the stamp, the counter counting up."""

    def __init__(self, width: int, height: int) -> None:
        ramp = np.linspace(40, 215, width, dtype=np.uint8)
        self._base = np.repeat(np.broadcast_to(ramp, (height, width))[..., None], 3, axis=2)
        self.counter = 0

    def make(self, stamp_ns: int | None = None) -> np.ndarray:
        """The next frame, stamped with stamp_ns (monotonic ns), else the moment now."""
        image = self._base.copy()
        clockstamp.burn(image, time.monotonic_ns() if stamp_ns is None else stamp_ns,
                        self.counter)
        self.counter += 1
        return image


def run_paced(fps: float, make: Callable[[int], None], stop: threading.Event) -> None:
    """Call make(due_ns) once per frame period until stop is set, with the monotonic ns
    the frame was due at. Like a free-running sensor, a late tick is skipped, never made
    up in a burst."""
    pacer = DeadlinePacer(fps)
    while not stop.is_set():
        pacer.wait()
        make(round(pacer.deadline * 1e9))
