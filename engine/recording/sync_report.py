"""Inter-camera grab spread: how far apart in time the cameras latched each frame set.

For every frame number present in all cameras, spread = latest minus earliest
after_grab stamp. Its median, p99 and max (ms) say how well the rig held sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from engine.recording.manifest import write_json_atomic
from engine.recording.timestamps import read_timestamps

SYNC_REPORT_NAME = "sync_report.json"


class GrabColumns(TypedDict):
    """What the spread needs of a camera's timestamps (TimestampColumns has more)."""

    frame: np.ndarray
    after_grab_ns: np.ndarray


def compute_spread(timestamps_by_camera: Mapping[str, GrabColumns]) -> dict[str, Any]:
    """Spread summary over the frame numbers common to all cameras."""
    columns = list(timestamps_by_camera.values())
    if not columns:
        return _summary(np.empty(0, np.int64))
    common = columns[0]["frame"]
    for camera in columns[1:]:
        common = np.intersect1d(common, camera["frame"])
    grabs = np.empty((len(columns), len(common)), np.int64)
    for row, camera in enumerate(columns):
        frames = np.asarray(camera["frame"])
        order = np.argsort(frames, kind="stable")
        positions = order[np.searchsorted(frames, common, sorter=order)]
        grabs[row] = np.asarray(camera["after_grab_ns"])[positions]
    return _summary(grabs.max(axis=0) - grabs.min(axis=0))


def _summary(spread_ns: np.ndarray) -> dict[str, Any]:
    if len(spread_ns) == 0:
        return {"frame_sets": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    p50, p99 = np.percentile(spread_ns, [50, 99])
    return {
        "frame_sets": len(spread_ns),
        "p50_ms": round(float(p50) / 1e6, 3),
        "p99_ms": round(float(p99) / 1e6, 3),
        "max_ms": round(float(spread_ns.max()) / 1e6, 3),
    }


def write_sync_report(recording_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Compute the spread from the manifest's timestamps files, write sync_report.json,
    return the summary (what the manifest's "sync" holds)."""
    recording_dir = Path(recording_dir)
    timestamps = {
        camera["id"]: read_timestamps(recording_dir / camera["timestamps"])
        for camera in manifest["cameras"]
    }
    summary = compute_spread(timestamps)
    report = summary | {
        "cameras": {camera: {"frames": len(t["frame"])} for camera, t in timestamps.items()}
    }
    write_json_atomic(recording_dir / SYNC_REPORT_NAME, report)
    return summary
