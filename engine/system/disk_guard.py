"""Low-disk thresholds: warn early, refuse a start, and stop a recording while there is
still room for its index, manifest and sync report (a few hundred KB per camera-hour)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from engine.system.storage import free_bytes as disk_free_bytes

log = logging.getLogger(__name__)

Level = Literal["ok", "warning", "danger"]
GB = 1e9


class LowDiskError(RuntimeError):
    """A recording may not start: too little free space in its output folder."""


class DiskGuard:
    """Applies the thresholds to the free space of a folder's disk.

    Levels: "danger" below stop_below_bytes, "warning" below warn_below_bytes, else "ok".
    """

    def __init__(
        self,
        warn_below_bytes: float = 5 * GB,
        stop_below_bytes: float = 1 * GB,
        free_bytes: Callable[[Path], int] = disk_free_bytes,
    ) -> None:
        if stop_below_bytes > warn_below_bytes:
            raise ValueError("stop_below_bytes must not be above warn_below_bytes")
        self.warn_below_bytes = warn_below_bytes
        self.stop_below_bytes = stop_below_bytes
        self._free_bytes = free_bytes

    def level_of(self, free: int) -> Level:
        """The level for a free-space figure the caller already has."""
        if free < self.stop_below_bytes:
            return "danger"
        return "warning" if free < self.warn_below_bytes else "ok"

    def level(self, path: Path) -> Level:
        """The level of path's disk; "danger" when its free space cannot be read."""
        try:
            return self.level_of(self._free_bytes(Path(path)))
        except OSError as exc:
            log.warning("cannot read free space of %s: %s", path, exc)
            return "danger"

    def check_can_start(self, path: Path) -> None:
        """Raise LowDiskError (naming the folder and its free GB) unless a recording may start."""
        try:
            free = self._free_bytes(Path(path))
        except OSError as exc:
            raise LowDiskError(f"cannot read the free space of {path}: {exc}") from exc
        if free < self.stop_below_bytes:
            raise LowDiskError(
                f"only {free / GB:.2f} GB free in {path}; recording needs at least "
                f"{self.stop_below_bytes / GB:.2f} GB")

    def should_stop(self, path: Path) -> str | None:
        """Why a running recording must stop now, or None.

        A failed free-space read is not a reason: the writers report a disk that really fails.
        """
        try:
            free = self._free_bytes(Path(path))
        except OSError as exc:
            log.warning("cannot read free space of %s: %s", path, exc)
            return None
        if free < self.stop_below_bytes:
            return (f"disk almost full: {free / GB:.2f} GB free in {path} (stop threshold "
                    f"{self.stop_below_bytes / GB:.2f} GB); stopping so the files can be finalized")
        return None
