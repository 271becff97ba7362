"""Raw BGR frames, clock-stamped on a fixed schedule, to stdout: the picture source of a
stand-in camera whose server (ffmpeg's MJPEG over HTTP) reads them from a pipe. Each is
stamped with the moment it was due, as a sensor on its own clock exposes it however late
the machine gets to sending it.

    python tests/stamped_feed.py WIDTH HEIGHT FPS | ffmpeg -f rawvideo ... -i - ...

Like a real camera, the schedule never waits for the reader: while a write blocks (no
client yet, or a slow one), newer frames replace the one waiting, and the frames in
between are lost at the source, as the stamps' counter shows. Ends when stdout closes.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sources.stamped_frames import StampedFrames, run_paced


class NewestFrame:
    """A one-frame mailbox: put() replaces, take() waits for a frame not taken yet."""

    def __init__(self) -> None:
        self._frame: bytes | None = None
        self._ready = threading.Condition()

    def put(self, frame: bytes) -> None:
        with self._ready:
            self._frame = frame
            self._ready.notify()

    def take(self) -> bytes:
        with self._ready:
            self._ready.wait_for(lambda: self._frame is not None)
            frame, self._frame = self._frame, None
        assert frame is not None
        return frame


def main() -> int:
    width, height, fps = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    frames, newest, stop = StampedFrames(width, height), NewestFrame(), threading.Event()
    def make(due_ns: int) -> None:
        newest.put(frames.make(due_ns).tobytes())

    threading.Thread(target=run_paced, args=(fps, make, stop), daemon=True).start()
    try:
        while True:
            sys.stdout.buffer.write(newest.take())
            sys.stdout.buffer.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
