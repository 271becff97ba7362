"""What every process the controller spawns shares: reporting to it, noticing its death."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from multiprocessing.connection import Connection

import cv2

PARENT_CHECK_S = 0.25


def single_threaded_opencv() -> None:
    """OpenCV's worker threads spin while they wait for work: woken 30 times a second, a
    process pays more CPU for them than splitting a frame's work saves (a 640x480 BGR to
    YUV conversion cost 0.8 ms of CPU with them, 0.23 ms without). For recording writers,
    each a process of its own: the processes are the parallelism. (Camera processes keep
    the pool: with it gone, the stamped MJPEG camera's capture times strayed from its
    pictures' in 2 of 5 recordings, and in none of 4 without.)"""
    cv2.setNumThreads(1)


def send_to_controller(conn: Connection, message: object) -> None:
    """Send, or drop the message when the controller is gone (ParentWatch then ends us)."""
    with contextlib.suppress(OSError):
        conn.send(message)


class ParentWatch:
    """Whether the controller that spawned this process still lives. It asks the kernel
    at most every PARENT_CHECK_S, so a loop may ask on every pass."""

    def __init__(self) -> None:
        # The pid the spawner passed down, not os.getppid(): a controller that died while
        # this process started up left it to init already, and it would watch init for ever.
        parent = multiprocessing.parent_process()
        self._parent_pid = parent.pid if parent is not None and parent.pid else os.getppid()
        self._next_check = 0.0

    def alive(self) -> bool:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + PARENT_CHECK_S
            return os.getppid() == self._parent_pid
        return True
