"""Live figures computed over a window by whoever asks for them, never by the group itself.

The group's queries are pure reads (counts with a monotonic time, capture stamps); each
observer (the service's stats tick, the bench) holds its own RateMeter and SpreadWindow,
so asking never disturbs another observer's window.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class _Observed(Protocol):
    def snapshot(self) -> dict[str, Any]: ...
    def spreads_since(self, start: int) -> tuple[np.ndarray, int]: ...


class RateMeter:
    """Frames per second of each camera, measured between snapshots at least window_s apart."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._marks: dict[str, tuple[float, int]] = {}

    def rates(self, snapshot: dict[str, Any]) -> dict[str, float]:
        """Camera id -> fps since the window's mark (0.0 on the first look at a camera)."""
        now = snapshot["time"]
        rates = {}
        for camera in snapshot["cameras"]:
            camera_id, count = camera["id"], camera["frames"]
            mark_time, mark_count = self._marks.get(camera_id, (now, count))
            elapsed = now - mark_time
            rates[camera_id] = round((count - mark_count) / elapsed if elapsed > 0 else 0.0, 2)
            if elapsed >= self.window_s or camera_id not in self._marks:
                self._marks[camera_id] = (now, count)
        return rates


class SpreadWindow:
    """The capture spread of the frame sets completed since the previous call."""

    def __init__(self, group: _Observed) -> None:
        self._group = group
        self._next = 0

    def new_spreads_ms(self) -> np.ndarray:
        spreads, end = self._group.spreads_since(self._next)
        self._next = max(self._next, end)
        return spreads

    def summary(self) -> dict[str, float]:
        return spread_summary(self.new_spreads_ms())


class LiveStats:
    """The group's snapshot with measured fps per camera and the spread since the last
    sample: what the `stats` event shows."""

    def __init__(self, group: _Observed) -> None:
        self.group = group
        self._rates = RateMeter()
        self._spreads = SpreadWindow(group)

    def sample(self) -> dict[str, Any]:
        snapshot = self.group.snapshot()
        rates = self._rates.rates(snapshot)
        return {
            "cameras": [{**camera, "fps": rates[camera["id"]]} for camera in snapshot["cameras"]],
            "paused": snapshot["paused"],
            "recording": snapshot["recording"],
            "spread": self._spreads.summary(),
        }


def spread_summary(spreads_ms: np.ndarray) -> dict[str, float]:
    if not len(spreads_ms):
        return {"frame_sets": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "frame_sets": len(spreads_ms),
        "p50_ms": round(float(np.percentile(spreads_ms, 50)), 3),
        "p99_ms": round(float(np.percentile(spreads_ms, 99)), 3),
        "max_ms": round(float(spreads_ms.max()), 3),
    }
