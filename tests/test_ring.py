"""The frame ring: slot layout, backpressure room, torn-read detection, segment hygiene."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from engine.ipc.ring import (
    FLAG_KEY,
    FLAG_RECORD,
    M_AFTER_GRAB,
    M_CAPTURE,
    M_FLAGS,
    M_FRAME,
    M_SEQ,
    FrameRing,
    sweep_stale_segments,
)
from tests.waiting import wait_for


@pytest.fixture
def ring():
    ring = FrameRing.create(4, (48, 64, 3))
    yield ring
    ring.close()


def test_a_frame_carries_its_capture_time_else_its_after_grab_stamp(ring):
    ring.begin_write(0)
    ring.end_write(0, 10, 20, 30, 0, FLAG_RECORD, 15)
    ring.begin_write(1)
    ring.end_write(1, 40, 50, 60, 0, FLAG_RECORD)  # the source cannot tell
    assert ring.metadata(0)[M_CAPTURE] == 15
    assert ring.metadata(1)[M_CAPTURE] == ring.metadata(1)[M_AFTER_GRAB] == 50


def test_published_frame_is_read_back_with_its_metadata(ring):
    ring.begin_write(0)[:] = 7
    ring.end_write(0, 1, 2, 3, 4, FLAG_RECORD)
    out = np.zeros(ring.shape, np.uint8)
    meta = ring.read_latest(out)
    assert meta is not None and meta[M_FRAME] == 0 and meta[M_FLAGS] == FLAG_RECORD
    assert (out == 7).all()
    assert ring.latest == 0


def test_slot_images_do_not_overlap(ring):
    for n in range(ring.n_slots):
        ring.begin_write(n)[:] = n + 1
        ring.end_write(n, 0, 0, 0, 0, 0)
    for n in range(ring.n_slots):
        assert (ring.image(n) == n + 1).all()


def test_nothing_before_the_first_frame(ring):
    assert ring.read_latest(np.zeros(ring.shape, np.uint8)) is None


def test_room_respects_the_writer_cursor(ring):
    assert ring.has_room(100)  # no writer holds the ring
    ring.cursor = 10
    assert ring.has_room(13)
    assert not ring.has_room(14)  # would overwrite frame 10, still unwritten


def test_a_write_in_progress_is_never_returned(ring):
    ring.begin_write(0)[:] = 1
    ring.end_write(0, 0, 0, 0, 0, 0)
    ring.begin_write(1)  # odd sequence: being written
    ring.meta[1, M_FRAME] = 1
    ring._header[5] = 1  # pretend it was published too early
    assert ring.read_latest(np.zeros(ring.shape, np.uint8)) is None
    assert ring.meta[1, M_SEQ] & 1


def test_reader_never_sees_a_torn_frame():
    """A writer thread rewrites slots constantly; every frame the reader gets is uniform."""
    ring = FrameRing.create(3, (240, 320, 3))
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            ring.begin_write(n)[:] = n % 251
            ring.end_write(n, 0, 0, 0, 0, 0)
            n += 1
            time.sleep(0.0002)  # a fast camera: still laps a slow reader now and then

    writer = threading.Thread(target=write)
    writer.start()
    out = np.zeros(ring.shape, np.uint8)
    good = 0
    try:
        # The writer thread may take a while to get the GIL.
        wait_for(lambda: ring.latest >= 0, 5, "the writer thread's first frame", step_s=0.001)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            meta = ring.read_latest(out)
            if meta is None:
                continue
            good += 1
            assert out.min() == out.max() == meta[M_FRAME] % 251
    finally:
        stop.set()
        writer.join()
        ring.close()
    assert good > 100


def test_attach_sees_the_same_memory_and_close_unlinks(ring):
    other = FrameRing.attach(ring.name)
    try:
        ring.begin_write(2)[:] = 9
        ring.end_write(2, 0, 0, 0, 0, 0)
        assert other.latest == 2 and (other.image(2) == 9).all()
        assert other.shape == ring.shape and other.n_slots == ring.n_slots
    finally:
        other.close()


def test_the_start_up_sweep_removes_rings_of_dead_processes_only(tmp_path):
    from pathlib import Path

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_pid = int(finished.stdout)  # that process has exited
    orphan = Path("/dev/shm") / f"rw{dead_pid}_feedbeef"
    orphan.write_bytes(b"left by a killed engine")
    live = FrameRing.create(2, (8, 8, 3))  # ours: this process is alive
    try:
        assert orphan.name in sweep_stale_segments()
        assert not orphan.exists()
        assert (Path("/dev/shm") / live.name).exists()
    finally:
        orphan.unlink(missing_ok=True)
        live.close()


def test_a_packet_ring_carries_packets_and_shows_its_preview():
    """A camera recorded by copy: slots hold packets for the writer, and a display sees
    the preview picture (the last keyframe decoded), not a slot's bytes."""
    ring = FrameRing.create(4, (8, 8, 3), packets=True)
    try:
        display = FrameRing.attach(ring.name, display=True)
        out = np.zeros((8, 8, 3), np.uint8)
        assert display.packets and display.shown == -1 and display.read_latest(out) is None
        for frame in range(3):
            ring.begin_write(frame)
            ring.packet_buffer(frame)[:5] = frame + 1
            ring.end_write(frame, 1, 2, 3, 4, FLAG_KEY if frame == 1 else 0, 5, nbytes=5)
        assert ring.packet(2).tobytes() == bytes([3] * 5)
        assert ring.metadata(1)[M_FLAGS] == FLAG_KEY
        ring.write_preview(1)[:] = 200
        ring.end_preview()
        assert display.latest == 2 and display.shown == 1
        meta = display.read_latest(out)
        assert meta is not None and meta[M_FRAME] == 1 and (out == 200).all()
        display.close()
    finally:
        ring.close()


def test_a_packet_ring_is_watched_only_while_a_display_says_so(monkeypatch):
    """The camera decodes a copied stream's picture only for a display that watches it."""
    ring = FrameRing.create(4, (8, 8, 3), packets=True)
    try:
        display = FrameRing.attach(ring.name, display=True)
        assert not ring.watched()
        display.watch()
        assert ring.watched()
        monkeypatch.setattr("engine.ipc.ring.WATCH_LAPSE_NS", 0)
        assert not ring.watched()  # the display stopped saying so long enough ago
        display.close()
    finally:
        ring.close()


def test_a_mono_ring_shows_gray_on_a_colour_display():
    """A mono camera's ring has one channel; a tile's BGR buffer gets it as gray, at the
    ring's size or scaled."""
    ring = FrameRing.create(2, (48, 64, 1))
    try:
        picture = ring.begin_write(0)
        picture[:] = np.arange(64, dtype=np.uint8)[None, :, None]
        ring.end_write(0, 0, 0, 0, 0, 0)
        for size in ((48, 64), (24, 32)):
            out = np.zeros((*size, 3), np.uint8)
            assert ring.read_latest(out) is not None
            assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
            assert out[0, -1, 0] > out[0, 0, 0] + 50  # the ramp, not a blank
    finally:
        ring.close()
