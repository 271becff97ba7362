"""A finished take as an export reads it: its manifest, cameras, sensors and clocks.

Only a take whose files are final is exported (status finalized, or recovered after a
crash): a take still recording has files that grow, and an interrupted one may hold
nothing. Every camera's file then holds the same frames, frame k of each being frame
set k, and row k of its timestamps file describes video frame k: rows are taken by
position, and a frame's time is its `capture_ns` (`after_grab_ns` in files recorded
before that column existed), on the machine's monotonic clock.

That clock has no date, so the take's UTC start (the manifest's `started_utc`) is
placed on it by the rows' `utc` column, read right after `after_grab_ns`: the median
of their differences is the offset between the two clocks, to a few microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.export.errors import ExportError
from engine.recording.manifest import read_manifest
from engine.recording.timestamps import CAPTURE_COLUMN, read_timestamps
from engine.sensors.base import STAMP_COLUMNS
from engine.sensors.sidecar import read_sidecar

EXPORTABLE_STATUSES = ("finalized", "recovered")


@dataclass(frozen=True)
class TakeCamera:
    """One camera of the take: its file, its manifest entry and its frames' times."""

    id: str
    entry: dict[str, Any]
    video: Path
    capture_ns: np.ndarray  # video frame k was captured at capture_ns[k] (monotonic)
    frame_numbers: np.ndarray  # the group's frame-set number of video frame k


@dataclass(frozen=True)
class TakeSensor:
    """One sensor stream of the take: its samples as the sidecar CSV holds them."""

    name: str
    source: str
    csv: Path
    fields: tuple[str, ...]
    monotonic_ns: np.ndarray  # when each sample arrived (the cameras' clock)
    values: np.ndarray  # one row per sample, one column per field


@dataclass(frozen=True)
class FinishedTake:
    folder: Path
    manifest: dict[str, Any]
    cameras: tuple[TakeCamera, ...]
    frames: int  # in every camera's file
    fps: float  # the nominal rate every file is written at
    start_utc: datetime  # when the take started (the manifest's started_utc)
    start_ns: int  # the same moment on the monotonic clock of the stamps

    @property
    def name(self) -> str:
        """The take's folder name: a plain file name (the engine refuses any other)."""
        return self.folder.name

    def seconds(self, monotonic_ns: np.ndarray) -> np.ndarray:
        """Monotonic stamps as seconds since the take's start."""
        return (np.asarray(monotonic_ns, np.int64) - self.start_ns) / 1e9

    def utc_seconds(self, monotonic_ns: np.ndarray) -> np.ndarray:
        """Monotonic stamps as UTC seconds since the Unix epoch."""
        return self.seconds(monotonic_ns) + self.start_utc.timestamp()

    def sensors(self) -> tuple[TakeSensor, ...]:
        """The take's sensor streams that have a file, read now (only NWB carries them, so
        a damaged sensor file stops no other export)."""
        entries = self.manifest.get("sensors") or []
        try:
            return tuple(_sensor(self.folder, entry) for entry in entries if entry.get("file"))
        except KeyError as exc:
            raise ExportError(f"a sensor of its manifest has no {exc}") from exc


def read_take(folder: Path) -> FinishedTake:
    """The finished take in `folder`; ExportError saying what is wrong otherwise (not a
    recording, not finished, a camera's files missing or not matching the manifest)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    status = manifest.get("status")
    if status not in EXPORTABLE_STATUSES:
        raise ExportError(
            f"the take is {status!r}, not finished: only a take whose files are final "
            f"({' or '.join(EXPORTABLE_STATUSES)}) is exported"
            + ("; run `recorder-engine recover` on it first" if status == "recording" else ""))
    try:
        return _finished_take(folder, manifest)
    except KeyError as exc:
        raise ExportError(f"its manifest has no {exc}") from exc


def _finished_take(folder: Path, manifest: dict[str, Any]) -> FinishedTake:
    entries = manifest.get("cameras") or []
    counts = {entry.get("frames") for entry in entries}
    if not entries or len(counts) != 1 or not next(iter(counts)):
        raise ExportError(f"its manifest lists no frames to export (cameras: {len(entries)}, "
                          f"frames: {sorted(counts, key=str)})")
    frames = int(next(iter(counts)))
    cameras, clock_differences = [], []
    for entry in entries:
        video = folder / entry["file"]
        if not video.is_file():
            raise ExportError(f"camera {entry['id']}: its video file {video} is missing")
        columns = read_timestamps(folder / entry["timestamps"])
        if len(columns["frame"]) != frames:
            raise ExportError(f"camera {entry['id']}: {len(columns['frame'])} timestamp rows "
                              f"for {frames} frames")
        captured = (columns["capture_ns"] if CAPTURE_COLUMN in columns
                    else columns["after_grab_ns"])
        cameras.append(TakeCamera(str(entry["id"]), entry, video, captured, columns["frame"]))
        utc = np.array([text.rstrip("Z") for text in columns["utc"]], "datetime64[ns]")
        clock_differences.append(utc.astype(np.int64) - columns["after_grab_ns"])
    start_utc = _utc_datetime(str(manifest["started_utc"]))
    # UTC minus the monotonic clock: the median leaves out a row whose process was
    # preempted between its two readings.
    utc_minus_monotonic = int(np.median(np.concatenate(clock_differences)))
    return FinishedTake(folder, manifest, tuple(cameras), frames, float(manifest["fps"]),
                        start_utc, _utc_ns(start_utc) - utc_minus_monotonic)


def _sensor(folder: Path, entry: dict[str, Any]) -> TakeSensor:
    csv = folder / entry["file"]
    header, rows = read_sidecar(csv)
    first_field, arrived = len(STAMP_COLUMNS), header.index("monotonic_ns")
    fields = tuple(header[first_field:])
    try:
        stamps = np.array([int(row[arrived]) for row in rows], np.int64)
        values = np.array([[float(value) for value in row[first_field:]] for row in rows],
                          np.float64)
    except ValueError as exc:
        raise ExportError(f"sensor file {csv}: a value is not a number: {exc}") from exc
    return TakeSensor(str(entry["name"]), str(entry.get("source", "")), csv, fields, stamps,
                      values.reshape(len(rows), len(fields)))


def _utc_datetime(text: str) -> datetime:
    """The engine's UTC text (2026-11-22T04:11:15.123456Z) as an aware datetime."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ExportError(f"its manifest's started_utc {text!r} is not UTC text") from exc


def _utc_ns(moment: datetime) -> int:
    """An aware datetime as ns since the Unix epoch, exactly (no float on the way)."""
    since_epoch = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return ((since_epoch.days * 86_400 + since_epoch.seconds) * 1_000_000
            + since_epoch.microseconds) * 1000
