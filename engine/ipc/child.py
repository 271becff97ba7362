"""What every process the controller spawns shares: reporting to it, noticing its death."""

from __future__ import annotations

import contextlib
import os
import time
from multiprocessing.connection import Connection

PARENT_CHECK_S = 0.25


def send_to_controller(conn: Connection, message: object) -> None:
    """Send, or drop the message when the controller is gone (ParentWatch then ends us)."""
    with contextlib.suppress(OSError):
        conn.send(message)


class ParentWatch:
    """Whether the controller that spawned this process still lives. It asks the kernel
    at most every PARENT_CHECK_S, so a loop may ask on every pass."""

    def __init__(self) -> None:
        self._parent_pid = os.getppid()
        self._next_check = 0.0

    def alive(self) -> bool:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + PARENT_CHECK_S
            return os.getppid() == self._parent_pid
        return True
