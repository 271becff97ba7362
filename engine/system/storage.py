"""Space on the output folder's disk, and how fast recording is filling it.

The write rate is measured, not estimated from codec settings: it is the fall of the free
space over a sliding window, so every writer on the disk (ours or not) is counted.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

DiskUsage = Callable[[Path], Any]  # returns an object with .total, .used, .free (bytes)


def nearest_existing(path: Path) -> Path:
    """path, or its closest existing ancestor: a folder not created yet lives on that disk."""
    path = Path(path).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on path's disk."""
    return int(shutil.disk_usage(nearest_existing(path)).free)


class StorageMonitor:
    """Samples one folder's disk; call `sample()` about once a second."""

    def __init__(
        self,
        window_s: float = 30.0,
        disk_usage: DiskUsage = shutil.disk_usage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._disk_usage = disk_usage
        self._clock = clock
        self._path: Path | None = None
        self._history: deque[tuple[float, int]] = deque()

    def sample(self, path: Path) -> dict[str, Any]:
        """{"path", "total_bytes", "used_bytes", "free_bytes", "write_rate_bps",
        "seconds_to_full"}; raises OSError when the disk cannot be read."""
        path = Path(path)
        if path != self._path:  # another disk: the old history says nothing about it
            self._path = path
            self._history.clear()
        usage = self._disk_usage(nearest_existing(path))
        now, free = self._clock(), int(usage.free)
        self._history.append((now, free))
        while len(self._history) > 2 and now - self._history[1][0] >= self._window_s:
            self._history.popleft()
        rate = self._write_rate()
        return {"path": str(path), "total_bytes": int(usage.total), "used_bytes": int(usage.used),
                "free_bytes": free, "write_rate_bps": rate,
                "seconds_to_full": free / rate if rate > 0 else None}

    def _write_rate(self) -> float:
        (t0, free0), (t1, free1) = self._history[0], self._history[-1]
        if t1 <= t0 or free1 >= free0:
            return 0.0
        return (free0 - free1) / (t1 - t0)
