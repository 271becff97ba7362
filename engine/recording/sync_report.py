"""Inter-camera spread: how far apart in time the cameras captured each frame set.

For every frame number present in all cameras, spread = latest minus earliest stamp.
Frame numbers need not be contiguous: a take's writing pauses leave the same gaps in
every camera, and a frame set is matched by its number, never by its row.
The stamp is capture_ns where every camera's timestamps have it (the source's capture
time or its stand-in; the manifest's capture_clock says which), else after_grab_ns
(recordings made before capture_ns). Its median, p99 and max (ms) say how well the rig
held sync; each camera's mean offset from its frame sets' median says which one lags.
With a tolerance (engine.recording.sync_tolerance) the summary also counts the frame sets
that spread further (over_tolerance).

Cameras that stamp frames with their own clock (machine-vision cameras: device_ns) get
it mapped onto the engine's clock (engine/recording/device_clock.py); the report then
also gives the exposure spread: per frame set, the mapped device stamps of those cameras
and the capture stamps of the others. For a software-triggered camera it gives how long
after its trigger each exposure was stamped: steady for a camera that exposes on its
trigger, spread over a whole frame period for one that ignores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np

from engine.recording.device_clock import DeviceClock, fit_device_clock, trigger_lag
from engine.recording.manifest import write_json_atomic
from engine.recording.sync_tolerance import sync_tolerance
from engine.recording.timestamps import TimestampColumns, read_timestamps

SYNC_REPORT_NAME = "sync_report.json"

SpreadStamp = Literal["capture_ns", "after_grab_ns"]


class GrabColumns(TypedDict):
    """What the spread needs of a camera's timestamps (TimestampColumns has more)."""

    frame: np.ndarray
    after_grab_ns: np.ndarray
    capture_ns: NotRequired[np.ndarray]


def spread_stamp(timestamps_by_camera: Mapping[str, GrabColumns]) -> SpreadStamp:
    """capture_ns when every camera has it, else after_grab_ns (an older recording)."""
    if all("capture_ns" in camera for camera in timestamps_by_camera.values()):
        return "capture_ns"
    return "after_grab_ns"


def frame_set_stamps(
    timestamps_by_camera: Mapping[str, GrabColumns], stamp: SpreadStamp
) -> np.ndarray:
    """cameras x frame sets: each camera's stamp for every frame number all cameras have."""
    columns = list(timestamps_by_camera.values())
    if not columns:
        return np.empty((0, 0), np.int64)
    common = columns[0]["frame"]
    for camera in columns[1:]:
        common = np.intersect1d(common, camera["frame"])
    stamps = np.empty((len(columns), len(common)), np.int64)
    for row, camera in enumerate(columns):
        frames = np.asarray(camera["frame"])
        order = np.argsort(frames, kind="stable")
        positions = order[np.searchsorted(frames, common, sorter=order)]
        stamps[row] = np.asarray(camera[stamp])[positions]
    return stamps


def compute_spread(
    timestamps_by_camera: Mapping[str, GrabColumns], stamp: SpreadStamp | None = None,
    tolerance_ms: float | None = None,
) -> dict[str, Any]:
    """Spread summary over the frame numbers common to all cameras, from `stamp`
    (by default spread_stamp's choice); with tolerance_ms, also it and over_tolerance."""
    chosen = stamp or spread_stamp(timestamps_by_camera)
    return _summary(frame_set_stamps(timestamps_by_camera, chosen), tolerance_ms)


def mean_offsets_ms(stamps: np.ndarray) -> list[float]:
    """Each camera's mean offset (ms) from the median stamp of its frame sets; + is later."""
    if stamps.size == 0:
        return [0.0] * len(stamps)
    relative = (stamps - stamps.min()).astype(np.float64)  # small numbers: exact in float
    offsets = (relative - np.median(relative, axis=0)).mean(axis=1)
    return [round(float(offset) / 1e6, 3) for offset in offsets]


def _summary(stamps: np.ndarray, tolerance_ms: float | None) -> dict[str, Any]:
    if stamps.size == 0:
        summary: dict[str, Any] = {"frame_sets": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        spread_ns = np.empty(0, np.int64)
    else:
        spread_ns = stamps.max(axis=0) - stamps.min(axis=0)
        p50, p99 = np.percentile(spread_ns, [50, 99])
        summary = {
            "frame_sets": len(spread_ns),
            "p50_ms": round(float(p50) / 1e6, 3),
            "p99_ms": round(float(p99) / 1e6, 3),
            "max_ms": round(float(spread_ns.max()) / 1e6, 3),
        }
    if tolerance_ms is not None:
        summary["tolerance_ms"] = round(tolerance_ms, 3)
        summary["over_tolerance"] = int(np.count_nonzero(spread_ns > tolerance_ms * 1e6))
    return summary


def write_sync_report(recording_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Compute the spread from the manifest's timestamps files, write sync_report.json
    (with the stamp it used, the manifest's tolerance and each camera's mean offset),
    return the summary (what the manifest's "sync" holds)."""
    recording_dir = Path(recording_dir)
    timestamps = {
        camera["id"]: read_timestamps(recording_dir / camera["timestamps"])
        for camera in manifest["cameras"]
    }
    stamp = spread_stamp(timestamps)
    stamps = frame_set_stamps(timestamps, stamp)
    tolerance = sync_tolerance(manifest)
    summary = _summary(stamps, tolerance.ms if tolerance else None)
    report = summary | {
        "stamp": stamp,
        "mean_offset_ms": dict(zip(timestamps, mean_offsets_ms(stamps), strict=True)),
        # Repeated: frame sets for which the camera had no new frame (its previous again).
        "cameras": {camera: {"frames": len(t["frame"]),
                             "repeated": int(np.sum(t["repeat"])) if "repeat" in t else 0}
                    for camera, t in timestamps.items()},
    }
    clocks = device_clocks(manifest, timestamps)
    if clocks:
        report |= exposure_report(manifest, timestamps, clocks)
    write_json_atomic(recording_dir / SYNC_REPORT_NAME, report)
    return summary


def _arrival(camera: Mapping[str, Any], columns: TimestampColumns) -> np.ndarray:
    """When each frame reached the engine: its capture stamp, unless that is the moment
    its trigger fired (before the exposure), then its grab."""
    if camera.get("capture_clock") == "trigger" or "capture_ns" not in columns:
        return columns["after_grab_ns"]
    return columns["capture_ns"]


def device_clocks(manifest: dict[str, Any],
                  timestamps: Mapping[str, TimestampColumns]) -> dict[str, DeviceClock]:
    """Each camera's device clock mapping, for the cameras whose frames carry one."""
    clocks = {}
    for camera in manifest["cameras"]:
        columns = timestamps[camera["id"]]
        if "device_ns" in columns:
            clock = fit_device_clock(columns["device_ns"], _arrival(camera, columns))
            if clock is not None:
                clocks[camera["id"]] = clock
    return clocks


def exposure_report(manifest: dict[str, Any], timestamps: Mapping[str, TimestampColumns],
                    clocks: Mapping[str, DeviceClock]) -> dict[str, Any]:
    """The report's device_clocks and exposure parts (see the module doc)."""
    cameras: dict[str, dict[str, Any]] = {}
    exposures: dict[str, GrabColumns] = {}
    for camera in manifest["cameras"]:
        columns = timestamps[camera["id"]]
        clock = clocks.get(camera["id"])
        stamp = columns.get("capture_ns", columns["after_grab_ns"])
        if clock is not None and "device_ns" in columns:
            mapped = np.where(columns["device_ns"] >= 0, clock.to_host(columns["device_ns"]),
                              stamp)
            cameras[camera["id"]] = clock.summary()
            if camera.get("capture_clock") == "trigger":
                lag = trigger_lag(clock, columns["device_ns"], stamp)
                cameras[camera["id"]]["exposure_after_trigger_ms"] = lag.summary() | {
                    "follows_trigger": lag.follows(float(manifest.get("fps") or 0) or 30.0)}
            stamp = mapped
        exposures[camera["id"]] = {"frame": columns["frame"], "after_grab_ns": stamp}
    exposure = _summary(frame_set_stamps(exposures, "after_grab_ns"), None)
    exposure["stamps"] = {camera: "device_ns" if camera in clocks else "capture_ns"
                          for camera in exposures}
    return {"device_clocks": cameras, "exposure": exposure}
