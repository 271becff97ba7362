"""A doorbell: one process sleeps until another rings it, costing nothing in between.

A recording writer waits for frame sets that cameras complete. Polling for them cost
more CPU than muxing a copied camera's packets, and a poll slow enough to be cheap made
the writer late. A doorbell is a non-blocking pipe: ringing writes a byte (a full pipe
means it is rung already), waiting blocks in select() and empties the pipe. A ring
between a waiter's last look and its wait is not lost: the byte waits in the pipe.

It travels to a spawned process as a process argument (its file descriptors are handed
to the child the way multiprocessing hands a Connection's).
"""

from __future__ import annotations

import contextlib
import os
import select
from multiprocessing import reduction
from typing import Any

_DRAIN_BYTES = 4096


class Doorbell:
    def __init__(self, fds: tuple[int, int] | None = None) -> None:
        """A new doorbell, or (from a pickle) the read and write ends handed over."""
        if fds is None:
            fds = os.pipe()
            for fd in fds:
                os.set_blocking(fd, False)
        self._read_fd, self._write_fd = fds

    def ring(self) -> None:
        """Wake the waiter (now, or at its next wait); never blocks."""
        try:  # noqa: SIM105 - no context manager object per ring: a camera rings per frame
            os.write(self._write_fd, b"\0")
        except OSError:  # BlockingIOError: the pipe is full, so it is rung already
            pass

    def wait(self, timeout_s: float) -> bool:
        """Block until rung (since the last wait) or timeout_s; True when rung."""
        readable, _, _ = select.select([self._read_fd], [], [], timeout_s)
        if not readable:
            return False
        with contextlib.suppress(BlockingIOError):
            while len(os.read(self._read_fd, _DRAIN_BYTES)) == _DRAIN_BYTES:
                pass
        return True

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read_fd = self._write_fd = -1

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (reduction.DupFd(self._read_fd), reduction.DupFd(self._write_fd))


def _rebuild(read_fd: Any, write_fd: Any) -> Doorbell:
    return Doorbell((read_fd.detach(), write_fd.detach()))


def ring_all(doorbells: list[Doorbell]) -> None:
    for doorbell in doorbells:
        doorbell.ring()
