"""The sync report of a take across the nodes of a rig: how far apart in time, on one
clock, every camera of every node captured each frame set.

Each node's capture times are on its own clock; moved onto the coordinator's by the
node's measured offset (engine/nodes/clock.py offset_at), row k of every camera's file
is frame set k of the rig. Its spread (latest minus earliest) says how well the rig
held sync; within one frame period, every file's frame k shows the same moment to
within a frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SYNC_REPORT_NAME = "sync_report.json"


def rig_sync_report(corrected_ns: dict[str, np.ndarray], fps: float) -> dict[str, Any]:
    """The report of cameras named "node/camera", each with its capture times on the
    coordinator's clock (one per video frame)."""
    counts = {camera: len(times) for camera, times in corrected_ns.items()}
    period_ms = 1e3 / fps
    report: dict[str, Any] = {
        "cameras": len(counts), "frames": counts,
        "identical_counts": len(set(counts.values())) <= 1, "period_ms": round(period_ms, 3),
    }
    sets = min(counts.values(), default=0)
    if not sets:
        return report | {"frame_sets": 0}
    names = sorted(corrected_ns)
    stamps = np.stack([np.asarray(corrected_ns[name][:sets], np.int64) for name in names])
    spread_ms = (stamps.max(axis=0) - stamps.min(axis=0)) / 1e6
    median = np.median(stamps, axis=0)
    worst = int(np.argmax(spread_ms))
    return report | {
        "frame_sets": sets,
        "spread_ms": {"median": round(float(np.median(spread_ms)), 3),
                      "p99": round(float(np.percentile(spread_ms, 99)), 3),
                      "max": round(float(spread_ms[worst]), 3), "worst_set": worst},
        "within_one_period": round(float(np.mean(spread_ms < period_ms)), 5),
        "start_skew_ms": round(float(spread_ms[0]), 3),
        "camera_offset_ms": {name: round(float(np.mean(row - median)) / 1e6, 3)
                             for name, row in zip(names, stamps, strict=True)},
    }
