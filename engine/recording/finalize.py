"""A take's files made final in place: every camera cut to the same N frames, indexed.

Runs when a take stops and, for a take a crash left in "recording", at start-up
(`recover`). Each writer wrote its camera's final file from the first frame on
(`<cam>.mkv`, one cluster per frame), so nothing is copied: every camera is cut to
N frames, the most that every camera has both whole frames and timestamp rows for,
so frame k of every file is still one frame set, and each file is sealed where it
lies (`mkv_seal`: truncated, then its index and duration written). That takes the
same time and no more space for an hour as for a minute. Only the optional
multitrack file is a copy. A failure at any step leaves a take that can be
finalized again.

A take with writing pauses holds the frame numbers of its segments
(engine/recording/segments.py), the same in every camera: the timestamp rows must name
them in order, and the manifest's "segments" becomes the ranges of the N frames kept
(last_frame: the end of the last one), so a reader sees where the pauses are.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Generator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from engine.durable import fsync_path
from engine.recording import mkv_seal
from engine.recording.encoder import frame_rate
from engine.recording.errors import RecordingError
from engine.recording.manifest import MANIFEST_NAME, read_manifest, write_manifest
from engine.recording.progress import Progress, share
from engine.recording.segments import MANIFEST_KEY as SEGMENTS_KEY
from engine.recording.segments import Segment, frame_numbers, leading, manifest_segments
from engine.recording.sync_report import write_sync_report
from engine.recording.take_scan import READ_ERRORS, CameraScan, decodable_frames, scan_camera
from engine.recording.timestamps import columns_of, utc_field

MULTITRACK_NAME = "all_cameras.mkv"
FINAL_STATUSES = ("finalized", "interrupted", "recovered")
_SALVAGE_STATUSES = ("interrupted", "recovered")
_MANIFEST_KEYS = ("fps", "first_frame", "cameras")


class _NothingRecordedError(RecordingError):
    """No camera has a single whole frame or timestamp row: the take died before its
    first frame, so nothing was lost either."""


def finalize_recording(
    folder: Path,
    *,
    status: str,
    multitrack: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Make a take's files final and give it `status`; return a summary
    {"folder", "status", "frames", "frames_dropped", "bytes", "seconds"}.

    A take already final is left as it is. RecordingError, naming the file, when a
    file cannot be made final; the take then stays "recording" for `recover`.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}, got {status!r}")
    started = time.monotonic()
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("status") in FINAL_STATUSES:
        return _summary(folder, manifest, started)
    _check_manifest(folder, manifest)
    entries, fps = manifest["cameras"], float(manifest["fps"])
    try:
        segments = manifest_segments(manifest)
    except RecordingError as exc:
        raise RecordingError(f"{folder / MANIFEST_NAME}: {exc}") from exc
    segments = _without_keyframe_waits(folder, entries, segments)
    manifest["first_frame"] = segments[0][0]
    # Per camera, a scan (cluster by cluster after a crash) then a decode check: the
    # steps whose time grows with the take, reported as each ends.
    checking = share(progress, 0.0, 0.5 if multitrack else 1.0)
    steps = 2 * len(entries)
    cameras = []
    for entry in entries:
        cameras.append(scan_camera(folder, entry, segments, fps))
        if checking is not None:
            checking(len(cameras) / steps)
    decodable = {}
    for camera in cameras:
        if camera.layout is not None and camera.whole:  # not closed: index it to read it
            _seal(camera, camera.whole, fps)
        decodable[camera.id] = (decodable_frames(camera.video, camera.whole, fps)
                                if camera.whole else 0)
        if checking is not None:
            checking((len(cameras) + len(decodable)) / steps)
    frames = min(min(decodable[camera.id], len(camera.rows)) for camera in cameras)
    if frames == 0:
        found = "; ".join(f"{c.id}: {decodable[c.id]} whole frames that decode, "
                          f"{len(c.rows)} timestamp rows" for c in cameras)
        error = RecordingError if any(c.available for c in cameras) else _NothingRecordedError
        raise error(f"recording {folder}: nothing recoverable ({found})")
    for camera in cameras:
        if camera.whole > frames:
            _seal(camera, frames, fps)
        _cut_rows(camera, frames)
    if multitrack:
        write_multitrack(folder / MULTITRACK_NAME, cameras, frames, fps,
                         share(progress, 0.5, 1.0))
    fsync_path(folder)

    dropped = {camera.id: camera.available - frames for camera in cameras}
    last_utc = utc_field(cameras[0].columns, cameras[0].rows[frames - 1])
    _update_manifest(folder, manifest, status, leading(segments, frames), dropped, last_utc)
    if progress is not None:
        progress(1.0)
    return _summary(folder, manifest, started, dropped)


def _seal(camera: CameraScan, frames: int, fps: float) -> None:
    """Cut the camera's file after `frames` frames and index it, in place."""
    try:
        mkv_seal.seal(camera.video, camera.full_layout(fps), frames, fps)
    except (mkv_seal.MkvError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RecordingError(f"cannot finish video file {camera.video}: {reason}") from exc


def _cut_rows(camera: CameraScan, frames: int) -> None:
    """Cut the timestamps file after its first `frames` rows, in place (rows are ASCII
    lines, so their lengths are byte counts)."""
    path = camera.timestamps
    length = sum(len(line) + 1 for line in [",".join(camera.columns), *camera.rows[:frames]])
    try:
        if path.stat().st_size != length:
            os.truncate(path, length)
            fsync_path(path)
    except OSError as exc:
        raise RecordingError(f"cannot cut timestamps file {path}: {exc.strerror or exc}") from exc


LOCK_NAME = ".recording.lock"
# Disk set aside in the lock file while a take records, for what finalizing adds: each
# file's index (~65 KB per camera-hour), the manifest and the sync report.
RESERVED_BYTES = 1 << 20


def recording_lock(folder: Path) -> int:
    """Take the recording's lock for as long as its files are being written; returns the
    descriptor to close when done. The kernel drops it when the process dies, however it
    dies, so a crashed recording is never mistaken for one in progress.

    The lock file also holds RESERVED_BYTES of disk, handed back (`release_reserve`)
    just before the files are made final: a take that filled the disk still finishes."""
    descriptor = _take_lock(folder)
    if descriptor is None:
        raise RecordingError(f"recording {folder} is being written by another process")
    with contextlib.suppress(OSError):  # no room, or no fallocate here: no reserve
        os.posix_fallocate(descriptor, 0, RESERVED_BYTES)
    return descriptor


def _take_lock(folder: Path) -> int | None:
    """The take's lock (its file made if need be), or None while another process holds
    it: a writer, or a recovery of it. OSError if the file cannot be opened."""
    descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def release_reserve(descriptor: int) -> None:
    """Give the disk set aside by recording_lock back, for finalizing to use."""
    os.ftruncate(descriptor, 0)


def release_recording_lock(folder: Path, descriptor: int) -> None:
    """The files are final (or left for recovery): drop the lock and its file, so a
    finished folder holds only the recording. Only the lock's holder removes its file,
    and it does so before letting go: a file removed under a live writer would make
    is_locked take its take for a crashed one."""
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)
    finally:
        os.close(descriptor)


def is_locked(folder: Path) -> bool:
    """True while another process holds the recording's lock (its writer, or a recovery)."""
    try:
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing releases a lock we took
    return False


def _recordings(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """root itself if it is a recording, else its direct subfolders that are, with their
    manifests. Folders whose manifest cannot be read are skipped."""
    root = Path(root)
    if (root / MANIFEST_NAME).is_file():
        candidates = [root]
    elif root.is_dir():
        candidates = sorted(path for path in root.iterdir() if path.is_dir())
    else:
        return []
    found = []
    for folder in candidates:
        with contextlib.suppress(RecordingError):
            found.append((folder, read_manifest(folder)))
    return found


def find_interrupted(root: Path) -> list[Path]:
    """Recordings a crash left in status "recording" (see _recordings for where); a take
    still being written (its writer holds its lock) is not one."""
    return [folder for folder, manifest in _recordings(root)
            if manifest.get("status") == "recording" and not is_locked(folder)]


def recover(root: Path, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Finalize every interrupted take under root with status "recovered"; return
    their summaries.

    Never raises for one take: one that cannot be recovered is listed as
    {"folder", "error"}. progress reports 0..1 over all the interrupted takes, each an
    equal share. A take whose lock another process holds (see recording_lock) is being
    written, or recovered by that process: skipped. Otherwise recover holds the lock
    itself while it works and removes its file when done, so no take keeps one. A
    finished take that still has its lock file (a crash after its final manifest) loses
    it and is listed with "cleaned": True.
    """
    results: list[dict[str, Any]] = []
    takes = _recordings(root)  # each manifest read once
    to_recover = sum(manifest.get("status") == "recording" for _, manifest in takes)
    begun = 0  # interrupted takes reached so far: each has an equal share of progress
    for folder, manifest in takes:
        interrupted = manifest.get("status") == "recording"
        part = (share(progress, begun / to_recover, (begun + 1) / to_recover)
                if interrupted else None)
        begun += interrupted
        if not interrupted and not (folder / LOCK_NAME).exists():
            continue
        started = time.monotonic()
        try:
            lock = _take_lock(folder)
        except OSError as exc:
            results.append({"folder": str(folder), "error": str(exc)})
            continue
        if lock is None:
            continue
        try:
            release_reserve(lock)  # a dead writer's reserve: room for the index and manifest
            result = _recover_one(folder, manifest, part) if interrupted \
                else {**_summary(folder, manifest, started), "cleaned": True}
        finally:
            try:
                release_recording_lock(folder, lock)
            except OSError as exc:
                result = {"folder": str(folder), "error": str(exc)}
        results.append(result)
    return results


def _recover_one(folder: Path, manifest: dict[str, Any], progress: Progress | None
                 ) -> dict[str, Any]:
    """Finalize one interrupted take (its lock held by recover)."""
    try:
        try:
            return finalize_recording(folder, status="recovered", progress=progress,
                                      multitrack=bool(manifest.get("multitrack", False)))
        except _NothingRecordedError:
            return _mark_nothing_recorded(folder)
    except (RecordingError, OSError) as exc:
        return {"folder": str(folder), "error": str(exc)}


def _check_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST_NAME
    if manifest.get("layout") == "chunks":
        raise RecordingError(
            f"manifest {path}: a chunked take from an earlier version of this program; "
            "this version writes each camera's final file directly and cannot join chunks")
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise RecordingError(f"manifest {path} has no {', '.join(missing)}")
    if not manifest["cameras"]:
        raise RecordingError(f"manifest {path} lists no cameras")


def write_multitrack(path: Path, cameras: list[CameraScan], frames: int, fps: float,
                     progress: Progress | None) -> None:
    """Copy the first `frames` frames of each camera into one Matroska file, a track each
    (titled with the camera's id, packets as recorded, frame k of every track at k / fps),
    through path.tmp; check that every track holds them, then rename it into place. The one
    copy a take makes, and only when the rig asks for it; `recorder-engine export --to mkv`
    makes the same file from a finished take (engine/export/mkv.py)."""
    temporary = path.with_name(path.name + ".tmp")
    rate = frame_rate(fps)
    try:
        with av.open(str(temporary), "w", format="matroska") as output, \
                contextlib.ExitStack() as sources:
            tracks = []
            for camera in cameras:
                source = sources.enter_context(av.open(str(camera.video)))
                stream = output.add_stream_from_template(source.streams.video[0])
                stream.time_base = 1 / rate
                stream.metadata["title"] = camera.id
                tracks.append((stream, _packets(source, camera.video, rate)))
            for done in range(frames):  # frame k of every track in turn: interleaved
                for stream, packets in tracks:
                    packet = next(packets)
                    packet.stream = stream
                    output.mux(packet)
                if progress is not None and done % 300 == 0:
                    progress(done / frames)
        fsync_path(temporary)
        _check_packets(temporary, len(cameras), frames)
        os.replace(temporary, path)
    except (RecordingError, av.FFmpegError, OSError, StopIteration) as exc:
        with contextlib.suppress(OSError):
            if temporary.is_file():  # a failed copy must not keep its disk space
                temporary.unlink()
        if isinstance(exc, RecordingError):
            raise
        raise RecordingError(f"cannot write video file {path}: {exc!r}") from exc


def _packets(container: av.container.InputContainer, path: Path, rate: Fraction
             ) -> Generator[av.Packet, None, None]:
    """The file's packets in frame order, stamped with their frame index."""
    stream = container.streams.video[0]
    if stream.time_base is None:
        raise RecordingError(f"{path} has no time base")
    index = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        packet.pts = packet.dts = index
        packet.duration = 1
        packet.time_base = 1 / rate
        yield packet
        index += 1


def _check_packets(path: Path, tracks: int, frames: int) -> None:
    """Read back a written file: every track holds exactly `frames` packets, and its first
    frame decodes (the track's codec setup is sound)."""
    counts = [0] * tracks
    decoded = [False] * tracks
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(container.streams.video):
                if packet.size == 0:
                    continue
                index = packet.stream.index
                counts[index] += 1
                if not decoded[index]:
                    decoded[index] = any(not frame.is_corrupt for frame in packet.decode())
            for index, stream in enumerate(container.streams.video):
                if not decoded[index]:  # a decoder that holds frames back gives them now
                    decoded[index] = any(not f.is_corrupt for f in stream.codec_context.decode())
    except READ_ERRORS as exc:
        raise RecordingError(f"{path} does not read back: {exc}") from exc
    if counts != [frames] * tracks:
        raise RecordingError(f"{path} holds {counts} frames per track, expected {frames}")
    if not all(decoded):
        raise RecordingError(f"{path}: the first frame of a track does not decode")


def _without_keyframe_waits(folder: Path, entries: list[dict[str, Any]],
                            segments: list[Segment]) -> list[Segment]:
    """A take with a camera recorded by copy: its writers skipped the same frame sets while
    waiting for that camera's keyframe, which the manifest's segments do not say. The
    segments then become the runs of frame numbers the longest timestamps file names
    (every writer wrote the same ones), within the promised ones."""
    if not any(entry.get("recorded_as") == "copy" for entry in entries):
        return segments
    named: list[int] = []
    for entry in entries:
        numbers = _row_frames(folder / entry["timestamps"])
        if len(numbers) > len(named):
            named = numbers
    open_from = segments[-1][0] if segments[-1][1] is None else None
    promised = set(frame_numbers(segments[:-1] if open_from is not None else segments))
    runs: list[Segment] = []
    for number in named:
        if number not in promised and (open_from is None or number < open_from):
            continue
        if runs and runs[-1][1] == number:
            runs[-1] = (runs[-1][0], number + 1)
        else:
            runs.append((number, number + 1))
    if not runs:
        return segments
    if segments[-1][1] is None:
        runs[-1] = (runs[-1][0], None)
    return runs


def _row_frames(path: Path) -> list[int]:
    """The frame numbers of a timestamps file's whole rows (none if its header is not
    one of the layouts)."""
    try:
        header, *lines = path.read_text(errors="replace").split("\n")[:-1]
        at = columns_of(header, path).index("frame")
    except (OSError, ValueError, RecordingError):
        return []
    numbers = []
    for line in lines:
        fields = line.split(",")
        number = fields[at] if at < len(fields) else ""
        if not number.isdigit():
            break
        numbers.append(int(number))
    return numbers


def _update_manifest(
    folder: Path,
    manifest: dict[str, Any],
    status: str,
    segments: list[list[int]],
    dropped: dict[str, int],
    last_utc: str,
) -> None:
    """The final manifest: status, the segments of the frames kept (last_frame: the end of
    the last), the counts, what was cut, the sync summary."""
    frames = sum(last - first for first, last in segments)
    manifest |= {
        "status": status, "layout": "files", "last_frame": segments[-1][1],
        SEGMENTS_KEY: segments,
    }
    if manifest.get("stopped_utc") is None:  # a crash left none: the last kept frame's time
        manifest["stopped_utc"] = last_utc
    for entry in manifest["cameras"]:
        entry["frames"] = frames
    if status in _SALVAGE_STATUSES:
        manifest["salvage"] = {"frames_kept": frames, "frames_dropped": dropped}
    errors = manifest.setdefault("errors", [])
    if any(dropped.values()):
        cut = ", ".join(f"{camera} {count}" for camera, count in dropped.items() if count)
        errors.append(f"kept {frames} frames per camera; dropped (cut or undecodable): {cut}")
    try:
        manifest["sync"] = write_sync_report(folder, manifest)
    except RecordingError as exc:  # a report problem must not cost the recording
        errors.append(f"sync report: {exc}")
    write_manifest(folder, manifest)


def _mark_nothing_recorded(folder: Path) -> dict[str, Any]:
    """A take that died before its first frame: say so, and keep no empty video files."""
    started = time.monotonic()
    manifest = read_manifest(folder)
    manifest |= {
        "status": "interrupted",
        "layout": "files",
        "last_frame": manifest["first_frame"],
        SEGMENTS_KEY: [],
        "salvage": {
            "frames_kept": 0,
            "frames_dropped": {entry["id"]: 0 for entry in manifest["cameras"]},
        },
    }
    for entry in manifest["cameras"]:
        entry["frames"] = 0
        (folder / entry["file"]).unlink(missing_ok=True)
    manifest.setdefault("errors", []).append("nothing was recorded")
    write_manifest(folder, manifest)
    return _summary(folder, manifest, started)


def _summary(
    folder: Path, manifest: dict[str, Any], started: float, dropped: dict[str, int] | None = None
) -> dict[str, Any]:
    """What assemble_recording returns; dropped defaults to what the manifest recorded."""
    entries = manifest["cameras"]
    if dropped is None:
        salvage = manifest.get("salvage") or {}
        dropped = salvage.get("frames_dropped") or {entry["id"]: 0 for entry in entries}
    files = [folder / entry["file"] for entry in entries] + [folder / MULTITRACK_NAME]
    return {
        "folder": str(folder),
        "status": manifest["status"],
        "frames": entries[0]["frames"] if entries else 0,
        "frames_dropped": dropped,
        "bytes": sum(path.stat().st_size for path in files if path.is_file()),
        "seconds": round(time.monotonic() - started, 3),
    }

