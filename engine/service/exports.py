"""Exports of finished recordings, each on a worker thread of its own.

An export reads every file of a take and may take minutes, so it never runs on the
client's reader thread (which would hold up that client's next command) and never in
the capture group. Its progress goes out as ExportProgress events, at most ten a second
(a format may report every frame; no client redraws that often), and its end as one
ExportFinished with what it wrote or why it failed. Closing the engine cancels the
exports under way at their next progress report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.export import ExportError, export_take
from engine.wire.events import Event, ExportFinished, ExportProgress

log = logging.getLogger("engine.exports")

PROGRESS_INTERVAL_S = 0.1
CLOSE_WAIT_S = 10.0  # for the exports under way to see the cancellation and end


class ExportRefused(RuntimeError):
    """An export that cannot start; the text says why."""


class _Cancelled(Exception):
    """Raised from an export's progress report when the engine closes."""


class Exports:
    """The exports under way, one thread each; one at a time per recording and format."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._running: dict[tuple[str, str], threading.Thread] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def start(self, folder: Path, to: str, output: Path | None) -> None:
        """Export `folder` to format `to` in the background; ExportRefused when the same
        export runs already or the engine is closing."""
        key = (str(folder), to)
        with self._lock:
            if self._closing.is_set():
                raise ExportRefused("the engine is shutting down")
            if key in self._running:
                raise ExportRefused(f"{folder.name} is being exported to {to} already")
            worker = threading.Thread(target=self._run, args=(folder, to, output),
                                      name=f"export-{to}", daemon=True)
            self._running[key] = worker
        self._emit(ExportProgress(folder=str(folder), to=to, fraction=0.0))
        worker.start()

    def _run(self, folder: Path, to: str, output: Path | None) -> None:
        reported_at = time.monotonic()

        def progress(fraction: float) -> None:
            nonlocal reported_at
            if self._closing.is_set():
                raise _Cancelled("cancelled: the engine shut down")
            now = time.monotonic()
            if now - reported_at >= PROGRESS_INTERVAL_S:
                reported_at = now
                self._emit(ExportProgress(folder=str(folder), to=to,
                                          fraction=round(min(max(fraction, 0.0), 1.0), 3)))

        written: Path | None = None
        error: str | None = None
        try:
            written = export_take(folder, to, output, progress)
        except (ExportError, OSError, _Cancelled) as exc:
            error = str(exc) or type(exc).__name__
        except Exception as exc:  # a bug in a format must still end its export, and say so
            log.exception("export of %s to %s failed", folder, to)
            error = f"internal error: {type(exc).__name__}: {exc}"
        with self._lock:  # the same export may start again once its end is out
            self._emit(ExportFinished(folder=str(folder), to=to, error=error,
                                      output=None if written is None else str(written)))
            del self._running[(str(folder), to)]

    def close(self) -> None:
        """Cancel the exports under way and wait (a while) for them to end."""
        self._closing.set()
        with self._lock:
            workers = list(self._running.values())
        deadline = time.monotonic() + CLOSE_WAIT_S
        for worker in workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
