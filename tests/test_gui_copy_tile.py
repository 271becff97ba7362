"""A tile of a camera recorded by copy: it shows the keyframe preview, stays live while
packets come between keyframes, and says NO SIGNAL once they stop."""

from __future__ import annotations

import time

import numpy as np

from engine.ipc.ring import FrameRing
from recorder_gui.tiles import NO_SIGNAL_AFTER_S, CameraTile


def _publish(ring: FrameRing, frame: int) -> None:
    ring.begin_write(frame)
    ring.end_write(frame, 1, 2, 3, 4, 0, 5, nbytes=4)


def test_a_copied_cameras_tile_shows_its_keyframes_and_knows_it_is_live(qtbot):
    ring = FrameRing.create(8, (48, 64, 3), packets=True)
    tile = CameraTile("copy")
    qtbot.addWidget(tile)
    tile.resize(320, 240)
    tile.show()
    try:
        tile.attach({"ring": ring.name})
        tile.set_full_resolution(True)
        tile.status = "running"
        _publish(ring, 0)
        ring.write_preview(0)[:] = 90
        ring.end_preview()
        assert tile.pull() and tile.frame_number == 0
        image = tile.image()
        assert image is not None
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(48, 64, 3)
        assert (pixels == 90).all()
        # Packets keep coming, the picture waits for the next keyframe: live, not redrawn.
        deadline = time.monotonic() + NO_SIGNAL_AFTER_S + 0.4
        frame = 1
        while time.monotonic() < deadline:
            _publish(ring, frame)
            frame += 1
            assert not tile.pull()
            assert not tile.no_signal
            qtbot.wait(30)
        # The next keyframe's picture is shown.
        ring.write_preview(frame - 1)[:] = 160
        ring.end_preview()
        assert tile.pull() and tile.frame_number == frame - 1
        # No packet for longer than the limit: NO SIGNAL.
        qtbot.waitUntil(lambda: (tile.pull() or True) and tile.no_signal,
                        timeout=int(NO_SIGNAL_AFTER_S * 1000) + 2000)
    finally:
        tile.detach()
        ring.close()


def test_a_mono_cameras_tile_shows_its_gray_picture(qtbot):
    """A mono camera's ring has one channel; its tile shows it as gray, scaled or not."""
    ring = FrameRing.create(4, (48, 64, 1))
    tile = CameraTile("mono")
    qtbot.addWidget(tile)
    tile.resize(320, 240)
    tile.show()
    try:
        tile.attach({"ring": ring.name})
        tile.status = "running"
        for full, frame in ((True, 0), (False, 1)):
            tile.set_full_resolution(full)
            ring.begin_write(frame)[:] = 70 + frame
            ring.end_write(frame, 1, 2, 3, 4, 0)
            assert tile.pull() and tile.frame_number == frame
            image = tile.image()
            assert image is not None and not image.isNull()
            pixels = np.frombuffer(image.constBits(), np.uint8)
            assert (pixels == 70 + frame).all()
        tile.grab()  # paints without an error
    finally:
        tile.detach()
        ring.close()
