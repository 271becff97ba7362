"""Check a recording folder against its contract, reporting every problem by name.

Decodes every frame of every video (corruption shows up only when decoding), so the
counts it reports are what a reader will actually get. Every camera's timestamps must
name the same frame numbers row by row: those of the manifest's segments (contiguous from
first_frame, jumping only over a writing pause the segments show;
engine/recording/segments.py), and number their rows' video frames 0, 1, 2, ... in
frame_index (where the file has it). For synthetic cameras it also
reads the burned-in frame stamps: a gated camera stamps the group's frame number, proving
frame k of every file is the same frame set; a free-running one (settings clock = "free")
stamps its own counter, so its numbers must only increase, and the gaps are the source
frames it skipped or missed. Same count is not same moment, so it also computes the
inter-camera spread from the timestamps (as the sync report does) and fails a recording
whose spread exceeds the sync tolerance (engine.recording.sync_tolerance has the rule).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from engine.recording.device_clock import fit_device_clock, trigger_lag
from engine.recording.errors import RecordingError
from engine.recording.manifest import read_manifest
from engine.recording.progress import Progress, share
from engine.recording.segments import MANIFEST_KEY as SEGMENTS_KEY
from engine.recording.segments import Segment, frame_numbers, manifest_segments
from engine.recording.stamp_band import top_rows
from engine.recording.sync_report import compute_spread, spread_stamp
from engine.recording.sync_tolerance import sync_failure, sync_tolerance
from engine.recording.timestamps import (
    INDEX_COLUMN,
    STAMP_COLUMNS,
    TimestampColumns,
    read_timestamps,
)
from engine.sources import framecode

MAX_PROBLEMS_PER_KIND = 10
PROGRESS_EVERY_FRAMES = 100  # decoding reports its progress this often
_CAMERA_KEYS = ("id", "file", "timestamps")


@dataclass
class VerifyReport:
    """Outcome of verify_recording; problems are human-readable lines."""

    recording_dir: Path
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    sync: dict[str, Any] | None = None  # the spread summary verify computed, with its stamp

    def summary(self) -> str:
        lines = [f"Recording {self.recording_dir}: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        manifest = self.manifest
        if manifest is not None:
            lines.append(
                f"  name {manifest.get('name')!r}, status {manifest.get('status')}, "
                f"codec {manifest.get('codec')}, {manifest.get('fps')} fps, "
                f"frames [{manifest.get('first_frame')}, {manifest.get('last_frame')})"
            )
            segments = manifest.get(SEGMENTS_KEY)
            if isinstance(segments, list) and len(segments) > 1:
                lines.append(f"  {len(segments)} segments (paused between them): "
                             + " ".join(f"[{first}, {last})" for first, last in segments))
        for camera_id, info in self.cameras.items():
            text = f"  {camera_id}: {info.get('frames_decoded', '?')} frames decoded"
            if "codec" in info:
                text += f" ({info['codec']} {info['width']}x{info['height']})"
            if "timestamp_rows" in info:
                text += f", {info['timestamp_rows']} timestamp rows"
            if "stamps_checked" in info:
                text += f", {info['stamps_checked']} frame stamps checked"
            if "source_frames_skipped" in info:
                text += f", {info['source_frames_skipped']} source frames skipped"
            if "camera_dropped_at" in info:
                dropped = info["camera_dropped_at"]
                text += (", device frame counter consecutive" if not dropped else
                         f", {len(dropped)} exposure{'s' * (len(dropped) != 1)} lost "
                         "by the camera (at frame "
                         f"{', '.join(str(frame) for frame in dropped[:10])}"
                         f"{', ...' if len(dropped) > 10 else ''})")
            if "exposure_after_trigger_ms" in info:
                lag = info["exposure_after_trigger_ms"]
                text += f", exposures {lag['p1']}-{lag['p99']} ms after their triggers"
            lines.append(text)
        sync = self.sync
        if sync:
            line = (f"  sync ({sync['stamp']}): {sync['frame_sets']} frame sets, p50 "
                    f"{sync['p50_ms']} ms, p99 {sync['p99_ms']} ms, max {sync['max_ms']} ms")
            if "tolerance_ms" in sync:
                line += (f", tolerance {sync['tolerance_ms']} ms "
                         f"({sync['over_tolerance']} frame sets over)")
            lines.append(line)
        if self.problems:
            lines.append(f"{len(self.problems)} problem line(s):")
            lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


class _Problems:
    """Problem lines, at most MAX_PROBLEMS_PER_KIND of each kind, then a count of the rest."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}
        self._counts: Counter[str] = Counter()

    def add(self, kind: str, text: str) -> None:
        self._counts[kind] += 1
        if self._counts[kind] <= MAX_PROBLEMS_PER_KIND:
            self._lines.setdefault(kind, []).append(text)

    def lines(self) -> list[str]:
        result = []
        for kind, lines in self._lines.items():
            result.extend(lines)
            hidden = self._counts[kind] - len(lines)
            if hidden:
                result.append(f"... and {hidden} more {kind} problems")
        return result


def verify_recording(recording_dir: Path, sync_tolerance_ms: float | None = None,
                     progress: Progress | None = None) -> VerifyReport:
    """Check videos, timestamps, frame stamps and sync of a recording folder; never raises
    on bad data. sync_tolerance_ms overrides the manifest's tolerance. progress: 0..1 as
    the videos are decoded, each camera an equal share."""
    report = VerifyReport(Path(recording_dir))
    problems = _Problems()
    try:
        manifest = read_manifest(report.recording_dir)
    except RecordingError as exc:
        report.problems = [str(exc)]
        return report
    report.manifest = manifest
    first_frame = manifest.get("first_frame")
    if not isinstance(first_frame, int):
        problems.add("manifest", f"manifest first_frame is {first_frame!r}, not a frame number")
        first_frame = 0
    segments = _segments(manifest, first_frame, problems)
    cameras = _manifest_cameras(manifest, problems)
    timestamps: dict[str, TimestampColumns | None] = {}
    for index, camera in enumerate(cameras):
        report.cameras[camera["id"]], timestamps[camera["id"]] = _verify_camera(
            report.recording_dir, camera, first_frame, segments, problems,
            share(progress, index / len(cameras), (index + 1) / len(cameras)),
        )
        _check_trigger(camera, timestamps[camera["id"]], manifest.get("fps"),
                       report.cameras[camera["id"]], problems)
    _check_same_frames(timestamps, problems)
    _check_counts(manifest, segments, cameras, report.cameras, problems)
    report.sync = _check_sync(manifest, timestamps, sync_tolerance_ms, problems)
    report.problems = problems.lines()
    report.ok = not report.problems
    return report


def _segments(manifest: dict[str, Any], first_frame: int, problems: _Problems
              ) -> list[Segment]:
    """The frame ranges the manifest says were recorded (one open range from first_frame
    for a recording made before segments, or one whose segments do not read)."""
    if SEGMENTS_KEY not in manifest:
        return [(first_frame, None)]
    try:
        segments = manifest_segments(manifest)
    except RecordingError as exc:
        problems.add("manifest", str(exc))
        return [(first_frame, None)]
    if segments and segments[0][0] != first_frame:
        problems.add("manifest", f"manifest segments start at frame {segments[0][0]}, "
                                 f"first_frame is {first_frame}")
    last = manifest.get("last_frame")
    if segments and isinstance(last, int) and segments[-1][1] not in (None, last):
        problems.add("manifest", f"manifest segments end at frame {segments[-1][1]}, "
                                 f"last_frame is {last}")
    return segments


def _manifest_cameras(manifest: dict[str, Any], problems: _Problems) -> list[dict[str, Any]]:
    """The manifest's camera entries that name their files; a problem for each that does not."""
    cameras = manifest.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        problems.add("manifest", "manifest lists no cameras")
        return []
    usable = []
    for position, camera in enumerate(cameras):
        missing = [key for key in _CAMERA_KEYS if not isinstance(camera, dict) or key not in camera]
        if missing:
            problems.add("manifest", f"manifest camera #{position} has no {', '.join(missing)}")
        else:
            usable.append(camera)
    return usable


def _verify_camera(
    recording_dir: Path, camera: dict[str, Any], first_frame: int,
    segments: list[Segment], problems: _Problems, progress: Progress | None = None,
) -> tuple[dict[str, Any], TimestampColumns | None]:
    """What verify found of one camera, and its timestamps (None if they do not read)."""
    camera_id = camera["id"]
    info: dict[str, Any] = {"file": camera["file"]}
    columns: TimestampColumns | None = None
    try:
        columns = read_timestamps(recording_dir / camera["timestamps"])
    except RecordingError as exc:
        problems.add("timestamps", f"{camera_id}: {exc}")
    if columns is not None:
        info["timestamp_rows"] = len(columns["frame"])
        _check_timestamps(camera_id, camera["timestamps"], columns, first_frame, segments,
                          problems)
        if _triggered(camera) and "device_frame" in columns:
            info["camera_dropped_at"] = _exposures_lost(columns)
    stamps = _decode(recording_dir / camera["file"], camera_id, camera, info, problems,
                     progress)
    if stamps is not None:
        # Frame numbers the rows say each video frame is; without rows, the contract's.
        if columns is not None:
            expected = columns["frame"]
        else:
            expected = np.arange(first_frame, first_frame + len(stamps))
        if _free_running(camera):
            repeats = columns.get("repeat") if columns is not None else None
            info["source_frames_skipped"] = _check_free_stamps(camera_id, camera, stamps,
                                                               repeats, problems)
        else:
            _check_stamps(camera_id, camera, stamps, expected, problems)
        info["stamps_checked"] = len(stamps)
    decoded = info.get("frames_decoded")
    if columns is not None and decoded is not None and info["timestamp_rows"] != decoded:
        problems.add(
            "timestamps",
            f"{camera_id}: {camera['timestamps']} has {info['timestamp_rows']} rows "
            f"for {decoded} decoded frames",
        )
    return info, columns


def _decode(
    path: Path,
    camera_id: str,
    camera: dict[str, Any],
    info: dict[str, Any],
    problems: _Problems,
    progress: Progress | None = None,
) -> list[tuple[int, int] | None] | None:
    """Decode every frame into info; return the frame stamps when the camera is synthetic.
    progress: the share of the frames the manifest counts that have been decoded."""
    if not path.is_file():
        problems.add("video", f"{camera_id}: video file {path.name} is missing")
        return None
    synthetic = bool(camera.get("synthetic"))
    expected = camera.get("frames") if isinstance(camera.get("frames"), int) else None
    stamps: list[tuple[int, int] | None] = []
    decoded = corrupt = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            info |= {"codec": context.name, "width": context.width, "height": context.height}
            for frame in container.decode(stream):
                decoded += 1
                corrupt += frame.is_corrupt
                if progress is not None and expected and decoded % PROGRESS_EVERY_FRAMES == 0:
                    progress(decoded / expected)
                if synthetic:
                    band = top_rows(frame, framecode.band_height(frame.width))
                    stamps.append(framecode.read(band))
            promised = _frames_in_header(container, stream)
        if promised is not None and promised != decoded:
            problems.add(
                "video",
                f"{camera_id}: {path.name} is truncated or damaged: its header says "
                f"{promised} frames, {decoded} decode",
            )
    except (av.FFmpegError, OSError, IndexError) as exc:
        reason = "no video stream" if isinstance(exc, IndexError) else str(exc)
        problems.add(
            "video", f"{camera_id}: {path.name} cannot be decoded after {decoded} frames: {reason}"
        )
    info["frames_decoded"] = decoded
    if progress is not None:
        progress(1.0)
    if corrupt:
        problems.add("video", f"{camera_id}: {path.name} has {corrupt} corrupt frames")
    return stamps if synthetic else None


def _frames_in_header(container: Any, stream: Any) -> int | None:
    """Frame count implied by the duration a finished MKV records in its header; None for
    a file that was never closed (no duration)."""
    if container.duration is None or not stream.average_rate:
        return None
    return round(container.duration * stream.average_rate / 1_000_000)


def _check_timestamps(
    camera_id: str,
    name: str,
    columns: TimestampColumns,
    first_frame: int,
    segments: list[Segment],
    problems: _Problems,
) -> None:
    frames = columns["frame"]
    if len(frames) and frames[0] != first_frame:
        problems.add(
            "frame numbering",
            f"{camera_id}: {name} starts at frame {frames[0]}, manifest first_frame {first_frame}",
        )
    _check_frame_numbers(camera_id, name, frames, segments, problems)
    if INDEX_COLUMN in columns:  # recordings made before it have none
        _check_frame_index(camera_id, name, columns[INDEX_COLUMN], problems)
    for column in STAMP_COLUMNS:
        values = columns[column]
        for row in np.flatnonzero(np.diff(values) < 0) + 1:
            problems.add(
                "timestamp order",
                f"{camera_id}: {name} row {row} (frame {frames[row]}): {column} goes back "
                f"{(values[row - 1] - values[row]) / 1e6:.3f} ms",
            )
    for earlier, later in itertools.pairwise(STAMP_COLUMNS):
        for row in np.flatnonzero(columns[earlier] > columns[later]):
            problems.add(
                "timestamp order",
                f"{camera_id}: {name} row {row} (frame {frames[row]}): {earlier} after {later}",
            )
    if "capture_ns" in columns:  # recordings made before it have none
        _check_capture(camera_id, name, columns, problems)


def _check_frame_numbers(
    camera_id: str, name: str, frames: np.ndarray, segments: list[Segment],
    problems: _Problems,
) -> None:
    """Each row's frame number is the one after the row before it, except across a pause
    the segments show; and the rows name the segments' frame numbers in order (a pause
    the rows skip over but the segments do not show, or the other way round)."""
    pauses = {(last - 1, after[0]) for (_, last), after in itertools.pairwise(segments)
              if last is not None}
    jumped = False
    for row in np.flatnonzero(np.diff(frames) != 1) + 1:
        if (int(frames[row - 1]), int(frames[row])) in pauses:
            continue
        jumped = True
        problems.add(
            "frame numbering",
            f"{camera_id}: {name} row {row}: frame {frames[row]} follows {frames[row - 1]}",
        )
    if jumped or not len(frames):
        return
    expected = np.fromiter(itertools.islice(frame_numbers(segments), len(frames)), np.int64)
    shared = min(len(expected), len(frames))
    wrong = np.flatnonzero(frames[:shared] != expected[:shared])
    if len(wrong):
        at = int(wrong[0])
        problems.add(
            "frame numbering",
            f"{camera_id}: {name} row {at} is frame {frames[at]}, where the manifest's "
            f"segments name frame {expected[at]}",
        )


def _check_frame_index(camera_id: str, name: str, indices: np.ndarray, problems: _Problems
                       ) -> None:
    """Row k describes video frame k: the frame_index column counts 0, 1, 2, ..."""
    wrong = np.flatnonzero(indices != np.arange(len(indices)))
    if len(wrong):
        at = int(wrong[0])
        problems.add("frame numbering", f"{camera_id}: {name} row {at} has frame_index "
                                        f"{indices[at]}, where it describes video frame {at}")


def _check_same_frames(timestamps: dict[str, TimestampColumns | None], problems: _Problems
                       ) -> None:
    """Row k of every camera's timestamps names the same frame number (one frame set)."""
    readable = [(camera, columns["frame"]) for camera, columns in timestamps.items()
                if columns is not None]
    if len(readable) < 2:
        return
    reference, frames = readable[0]
    for camera, other in readable[1:]:
        shared = min(len(frames), len(other))
        wrong = np.flatnonzero(other[:shared] != frames[:shared])
        if len(wrong):
            row = int(wrong[0])
            problems.add(
                "frame numbering",
                f"{camera}: timestamps row {row} is frame {other[row]}, {reference}'s is "
                f"frame {frames[row]}",
            )


def _check_capture(
    camera_id: str, name: str, columns: TimestampColumns, problems: _Problems
) -> None:
    """Capture times never go back, and no frame was captured after it was in the ring."""
    frames, captured = columns["frame"], columns["capture_ns"]
    for row in np.flatnonzero(np.diff(captured) < 0) + 1:
        problems.add(
            "timestamp order",
            f"{camera_id}: {name} row {row} (frame {frames[row]}): capture_ns goes back "
            f"{(captured[row - 1] - captured[row]) / 1e6:.3f} ms",
        )
    for row in np.flatnonzero(captured > columns["after_retrieve_ns"]):
        problems.add(
            "timestamp order",
            f"{camera_id}: {name} row {row} (frame {frames[row]}): capture_ns after "
            "after_retrieve_ns",
        )


def _check_stamps(
    camera_id: str,
    camera: dict[str, Any],
    stamps: list[tuple[int, int] | None],
    expected_frames: np.ndarray,
    problems: _Problems,
) -> None:
    index = camera.get("index")
    for k, (stamp, frame_number) in enumerate(zip(stamps, expected_frames, strict=False)):
        wanted = (int(frame_number), index)
        if stamp == wanted:
            continue
        found = "no readable stamp" if stamp is None else f"frame {stamp[0]} camera {stamp[1]}"
        problems.add(
            "frame stamp",
            f"{camera_id}: video frame {k} of {camera['file']} carries {found}, "
            f"expected frame {wanted[0]} camera {index}",
        )


def _triggered(camera: dict[str, Any]) -> bool:
    """Every frame set was one triggered exposure of the camera (a machine-vision camera
    in software or hardware trigger mode): its frame counter should advance by one a set."""
    settings = camera.get("settings")
    return isinstance(settings, dict) and settings.get("trigger") in ("software", "hardware")


def _check_trigger(camera: dict[str, Any], columns: TimestampColumns | None, fps: Any,
                   info: dict[str, Any], problems: _Problems) -> None:
    """A software-triggered camera with a clock of its own must expose on its trigger: its
    exposures, mapped from its clock, come a steady time after the triggers fired."""
    if (camera.get("capture_clock") != "trigger" or columns is None
            or "device_ns" not in columns or "capture_ns" not in columns
            or not isinstance(fps, int | float) or fps <= 0):
        return
    clock = fit_device_clock(columns["device_ns"], columns["after_grab_ns"])
    if clock is None:
        return
    lag = trigger_lag(clock, columns["device_ns"], columns["capture_ns"])
    info["exposure_after_trigger_ms"] = lag.summary()
    if not lag.follows(float(fps)):
        problems.add("trigger", f"{camera['id']}: its exposures do not follow the software "
                     f"trigger: its own clock puts them {lag.p1_ms:.1f} to {lag.p99_ms:.1f} ms "
                     f"after it (p1-p99), across a frame period ({1000 / fps:.1f} ms); check "
                     "the camera's trigger mode and source")


def _exposures_lost(columns: TimestampColumns) -> list[int]:
    """Frame numbers at which a triggered camera lost an exposure: a row marked repeat
    (the camera delivered no frame for that set), or a device counter that advanced more
    than the frame numbers did since the row before."""
    frames, counters = columns["frame"], columns["device_frame"]
    repeats = columns.get("repeat", np.zeros_like(frames))
    lost = [int(frame) for frame, repeat in zip(frames, repeats, strict=True) if repeat]
    new = np.flatnonzero((repeats == 0) & (counters >= 0))
    for before, after in itertools.pairwise(new):
        skipped = int(counters[after] - counters[before]) - int(frames[after] - frames[before])
        if skipped > 0 and after == before + 1:
            lost.append(int(frames[after]))
    return sorted(lost)


def _free_running(camera: dict[str, Any]) -> bool:
    """The camera ran on its own clock (the source reported its settings to the manifest)."""
    settings = camera.get("settings")
    return isinstance(settings, dict) and settings.get("clock") == "free"


def _check_free_stamps(
    camera_id: str,
    camera: dict[str, Any],
    stamps: list[tuple[int, int] | None],
    repeats: np.ndarray | None,
    problems: _Problems,
) -> int:
    """Each stamp names this camera and a source frame after the previous one (the same
    one where the timestamps mark a repeat); return how many source frame numbers the
    file skips (no frame set took them, or the sensor missed them)."""
    index = camera.get("index")
    previous: int | None = None
    skipped = 0
    for k, stamp in enumerate(stamps):
        if stamp is None or stamp[1] != index:
            found = "no readable stamp" if stamp is None else f"camera {stamp[1]}"
            problems.add("frame stamp", f"{camera_id}: video frame {k} of {camera['file']} "
                                        f"carries {found}, expected camera {index}")
            continue
        repeat = repeats is not None and k < len(repeats) and bool(repeats[k])
        if previous is not None and not (repeat and stamp[0] == previous):
            if stamp[0] <= previous:
                problems.add("frame stamp", f"{camera_id}: video frame {k} of {camera['file']} "
                                            f"carries source frame {stamp[0]} after {previous}")
            else:
                skipped += stamp[0] - previous - 1
        previous = stamp[0]
    return skipped


def _promised(manifest: dict[str, Any], segments: Sequence[Segment]
              ) -> tuple[int, str] | None:
    """How many frames the manifest says every file holds, and how it says it; None while
    it cannot tell (a take not finalized)."""
    if SEGMENTS_KEY in manifest:
        if any(last is None for _, last in segments):
            return None
        ranges = " ".join(f"[{first}, {last})" for first, last in segments) or "(none)"
        return sum(last - first for first, last in segments if last is not None), \
            f"manifest segments {ranges} hold"
    first, last = manifest.get("first_frame"), manifest.get("last_frame")
    if isinstance(first, int) and isinstance(last, int):
        return last - first, f"manifest range [{first}, {last}) holds"
    return None


def _check_counts(
    manifest: dict[str, Any],
    segments: list[Segment],
    cameras: list[dict[str, Any]],
    results: dict[str, dict[str, Any]],
    problems: _Problems,
) -> None:
    decoded = {
        cid: info["frames_decoded"] for cid, info in results.items() if "frames_decoded" in info
    }
    if len(set(decoded.values())) > 1:
        listing = ", ".join(f"{cid} {count}" for cid, count in decoded.items())
        problems.add("frame count", f"decoded frame counts differ between cameras: {listing}")
    promised = _promised(manifest, segments)
    for camera in cameras:
        count = decoded.get(camera["id"])
        if count is None:
            continue
        if camera.get("frames") is not None and count != camera["frames"]:
            problems.add(
                "frame count",
                f"{camera['id']}: decoded {count} frames, manifest says {camera['frames']}",
            )
        if promised is not None and count != promised[0]:
            problems.add(
                "frame count",
                f"{camera['id']}: decoded {count} frames, {promised[1]} {promised[0]}",
            )


def _check_sync(
    manifest: dict[str, Any],
    timestamps: dict[str, TimestampColumns | None],
    override_ms: float | None,
    problems: _Problems,
) -> dict[str, Any] | None:
    """The spread summary (with its stamp) judged against the sync tolerance; None when a
    camera's timestamps do not read (already a problem) or there are none."""
    readable = {camera: columns for camera, columns in timestamps.items() if columns is not None}
    if not readable or len(readable) < len(timestamps):
        return None
    tolerance = sync_tolerance(manifest, override_ms)
    if tolerance is None:
        problems.add("sync", "sync: the manifest names no fps and no sync_tolerance_ms, so "
                             "the spread cannot be judged")
    stamp = spread_stamp(readable)
    summary = compute_spread(readable, stamp, tolerance.ms if tolerance else None)
    failure = sync_failure(summary, tolerance, stamp) if tolerance else None
    if failure:
        problems.add("sync", failure)
    return summary | {"stamp": stamp}
