"""Chunks to final files: one MKV per camera holding the same N frames, trimmed timestamps.

Runs when a recording stops and, for a recording a crash left in "recording", at
start-up (`recover`). Packets are copied, not re-encoded, so it runs at disk speed.
Every camera is cut to N frames, the most that every camera has both decodable
frames and timestamp rows for, so frame k of every file is still one frame set.
The chunks are deleted only once every final file was written to a temporary name,
fsynced, verified to decode N frames and renamed, and the manifest says so: a
failure at any step leaves a recording that can be assembled again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Generator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from engine.durable import fsync_path
from engine.recording.chunk_scan import (
    CHUNKS_FOLDER,
    READ_ERRORS,
    CameraScan,
    scan_camera,
)
from engine.recording.encoder import frame_rate
from engine.recording.errors import RecordingError
from engine.recording.manifest import MANIFEST_NAME, read_manifest, write_manifest
from engine.recording.sync_report import write_sync_report
from engine.recording.timestamps import utc_field

MULTITRACK_NAME = "all_cameras.mkv"
FINAL_STATUSES = ("finalized", "interrupted", "recovered")
_SALVAGE_STATUSES = ("interrupted", "recovered")
_MANIFEST_KEYS = ("fps", "chunk_frames", "first_frame", "cameras")

Progress = Callable[[float], None]


class _NothingRecordedError(RecordingError):
    """No camera has a single decodable frame or timestamp row: the recording died
    before its first frame, so nothing was lost either."""


class _Tracker:
    """Reports done/total to the progress callback about once per chunk's worth of work."""

    def __init__(self, callback: Progress | None, total: int, step: int) -> None:
        self._callback = callback
        self._total = max(1, total)
        self._step = max(1, step)
        self._done = self._reported = 0

    def advance(self) -> None:
        self._done += 1
        if self._callback is not None and self._done - self._reported >= self._step:
            self._reported = self._done
            self._callback(min(1.0, self._done / self._total))

    def finish(self) -> None:
        if self._callback is not None:
            self._callback(1.0)


def assemble_recording(
    folder: Path,
    *,
    status: str,
    multitrack: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Turn a chunked recording into its final files and give it `status`; return a summary
    {"folder", "status", "frames", "frames_dropped", "bytes", "seconds"}.

    A recording already assembled (layout "files") is left as it is. RecordingError,
    naming the file, when the chunks cannot be assembled; they are then left intact.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}, got {status!r}")
    started = time.monotonic()
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("layout") == "files":
        _remove_chunks(folder)  # a crash may have come between the manifest and the removal
        return _summary(folder, manifest, started)
    _check_manifest(folder, manifest)
    entries, chunk_frames = manifest["cameras"], manifest["chunk_frames"]
    cameras = [
        scan_camera(folder, entry, manifest["first_frame"], chunk_frames) for entry in entries
    ]
    frames = min(camera.usable for camera in cameras)
    if frames == 0:
        found = "; ".join(
            f"{c.id}: {c.frames} decodable frames, {len(c.rows)} timestamp rows" for c in cameras
        )
        error = RecordingError if any(c.available for c in cameras) else _NothingRecordedError
        raise error(f"recording {folder}: nothing recoverable ({found})")

    outputs = [(folder / e["file"], [c]) for e, c in zip(entries, cameras, strict=True)]
    if multitrack:
        outputs.append((folder / MULTITRACK_NAME, cameras))
    copies = sum(len(tracks) for _, tracks in outputs) * frames
    tracker = _Tracker(progress, 2 * copies, chunk_frames)  # copy, then read back
    rate = frame_rate(manifest["fps"])
    for path, tracks in outputs:
        _write_video(path, tracks, frames, rate, tracker)
    timestamp_files = [folder / entry["timestamps"] for entry in entries]
    for path, camera in zip(timestamp_files, cameras, strict=True):
        _write_rows(path, camera.columns, camera.rows[:frames])
    for renamed_in in {folder, *(path.parent for path in timestamp_files)}:
        fsync_path(renamed_in)  # the renames themselves survive a power cut

    dropped = {camera.id: camera.available - frames for camera in cameras}
    last_utc = utc_field(cameras[0].columns, cameras[0].rows[frames - 1])
    _update_manifest(folder, manifest, status, frames, dropped, last_utc)
    _remove_chunks(folder)
    tracker.finish()
    return _summary(folder, manifest, started, dropped)


LOCK_NAME = ".recording.lock"


def recording_lock(folder: Path) -> int:
    """Take the recording's lock for as long as its files are being written; returns the
    descriptor to close when done. The kernel drops it when the process dies, however it
    dies, so a crashed recording is never mistaken for one in progress."""
    descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return descriptor


def release_recording_lock(folder: Path, descriptor: int) -> None:
    """The files are final (or left for recovery): drop the lock and its file, so a
    finished folder holds only the recording."""
    (folder / LOCK_NAME).unlink(missing_ok=True)
    os.close(descriptor)


def is_locked(folder: Path) -> bool:
    """True while another process holds the recording's lock."""
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
    """Recordings a crash left in status "recording" (see _recordings for where)."""
    return [folder for folder, manifest in _recordings(root)
            if manifest.get("status") == "recording"]


def recover(root: Path, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Assemble every interrupted recording under root with status "recovered"; return
    their summaries. Must not run while a recording under root is still being written.

    Never raises for one recording: one that cannot be recovered is listed as
    {"folder", "error"}. progress reports 0..1 for each recording in turn. A recording
    whose writer still holds its lock (see recording_lock) is being written: skipped.
    A finished recording that still holds chunks or its lock file loses them and is
    listed with "cleaned": True.
    """
    results: list[dict[str, Any]] = []
    for folder, manifest in _recordings(root):  # each manifest read once
        if is_locked(folder):
            continue
        if manifest.get("status") == "recording":
            results.append(_recover_one(folder, manifest, progress))
        elif manifest.get("layout") == "files" and (
                (folder / CHUNKS_FOLDER).exists() or (folder / LOCK_NAME).exists()):
            results.append(_clean_finished(folder, manifest))  # a crash after the manifest
    return results


def _recover_one(folder: Path, manifest: dict[str, Any], progress: Progress | None
                 ) -> dict[str, Any]:
    """Assemble one interrupted recording; its dead writer's lock file goes with it."""
    try:
        try:
            result = assemble_recording(folder, status="recovered", progress=progress,
                                        multitrack=bool(manifest.get("multitrack", False)))
        except _NothingRecordedError:
            result = _mark_nothing_recorded(folder)
        (folder / LOCK_NAME).unlink(missing_ok=True)
        return result
    except (RecordingError, OSError) as exc:
        return {"folder": str(folder), "error": str(exc)}


def _clean_finished(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """A finished recording that still holds chunks or its lock file loses them."""
    started = time.monotonic()
    try:
        _remove_chunks(folder)
        (folder / LOCK_NAME).unlink(missing_ok=True)
    except (RecordingError, OSError) as exc:
        return {"folder": str(folder), "error": str(exc)}
    return {**_summary(folder, manifest, started), "cleaned": True}


def _check_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST_NAME
    if manifest.get("layout") != "chunks":
        raise RecordingError(f"manifest {path}: layout is {manifest.get('layout')!r}, not chunks")
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise RecordingError(f"manifest {path} has no {', '.join(missing)}")
    if not manifest["cameras"]:
        raise RecordingError(f"manifest {path} lists no cameras")


def _write_video(
    path: Path, cameras: list[CameraScan], frames: int, rate: Fraction, tracker: _Tracker
) -> None:
    """Copy the first `frames` frames of each camera into path (one track each) through
    path.tmp, check that it holds exactly that many, then rename it into place."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with av.open(str(temporary), "w", format="matroska") as output, \
                contextlib.ExitStack() as sources:
            tracks = []
            for camera in cameras:
                with av.open(str(camera.chunks[0].path)) as first:
                    stream = output.add_stream_from_template(first.streams.video[0])
                stream.time_base = 1 / rate
                stream.metadata["title"] = camera.id
                packets = sources.enter_context(contextlib.closing(_packets(camera, rate)))
                tracks.append((stream, packets))
            for _ in range(frames):  # frame k of every track in turn: interleaved
                for stream, packets in tracks:
                    packet = next(packets)
                    packet.stream = stream
                    output.mux(packet)
                    tracker.advance()
        fsync_path(temporary)
        _check_packets(temporary, len(cameras), frames, tracker)
        os.replace(temporary, path)
    except (RecordingError, av.FFmpegError, OSError) as exc:
        with contextlib.suppress(OSError):
            if temporary.is_file():  # a failed copy must not keep its disk space
                temporary.unlink()
        if isinstance(exc, RecordingError):
            raise
        raise RecordingError(f"cannot write video file {path}: {exc}") from exc


def _packets(camera: CameraScan, rate: Fraction) -> Generator[av.Packet, None, None]:
    """The camera's packets in frame order, stamped with their frame index in the final file."""
    index = 0
    for chunk in camera.chunks:
        taken = 0
        with av.open(str(chunk.path)) as container:
            stream = container.streams.video[0]
            if stream.time_base is None:
                raise RecordingError(f"chunk {chunk.path} has no time base")
            # frame = round(pts * time_base * rate), in integers: Fraction arithmetic per
            # packet was a third of the whole assembly's time
            ticks = stream.time_base * rate
            scale, per_frame = ticks.numerator, ticks.denominator
            for packet in container.demux(stream):
                if taken == chunk.frames:
                    break
                if packet.size == 0:
                    continue
                if packet.pts is None or (
                        (2 * packet.pts * scale + per_frame) // (2 * per_frame) != taken):
                    raise RecordingError(
                        f"chunk {chunk.path}: packet {taken} has pts {packet.pts}; only frames "
                        "stored in display order (no B-frames) can be joined"
                    )
                packet.pts = packet.dts = index
                packet.duration = 1
                packet.time_base = 1 / rate
                yield packet
                index += 1
                taken += 1
        if taken < chunk.frames:
            raise RecordingError(f"chunk {chunk.path} ended after {taken} of {chunk.frames} frames")


def _check_packets(path: Path, tracks: int, frames: int, tracker: _Tracker) -> None:
    """Read back a written file: every track holds exactly `frames` packets, and its first
    frame decodes (the track's codec setup is sound). The packets themselves were checked
    when the chunks were scanned (a finished chunk was fsynced whole; a .part was decoded),
    so decoding them all again would only make stopping take time proportional to the
    take."""
    counts = [0] * tracks
    decoded = [False] * tracks
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(container.streams.video):
                if packet.size == 0:
                    continue
                index = packet.stream.index
                counts[index] += 1
                tracker.advance()
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


def _write_rows(path: Path, columns: tuple[str, ...], rows: list[str]) -> None:
    """Replace a timestamps file with exactly these rows, in their own layout (temp,
    fsync, rename)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "w", encoding="ascii", newline="") as file:
            file.write("\n".join([",".join(columns), *rows]) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise RecordingError(f"cannot write timestamps file {path}: {exc.strerror or exc}") from exc


def _update_manifest(
    folder: Path,
    manifest: dict[str, Any],
    status: str,
    frames: int,
    dropped: dict[str, int],
    last_utc: str,
) -> None:
    manifest |= {
        "status": status, "layout": "files", "last_frame": manifest["first_frame"] + frames
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
    """A recording that died before its first frame: say so, and create no video files."""
    started = time.monotonic()
    manifest = read_manifest(folder)
    manifest |= {
        "status": "interrupted",
        "layout": "files",
        "last_frame": manifest["first_frame"],
        "salvage": {
            "frames_kept": 0,
            "frames_dropped": {entry["id"]: 0 for entry in manifest["cameras"]},
        },
    }
    for entry in manifest["cameras"]:
        entry["frames"] = 0
    manifest.setdefault("errors", []).append("nothing was recorded")
    write_manifest(folder, manifest)
    _remove_chunks(folder)
    return _summary(folder, manifest, started)


def _remove_chunks(folder: Path) -> None:
    try:
        shutil.rmtree(folder / CHUNKS_FOLDER)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise RecordingError(f"cannot remove {folder / CHUNKS_FOLDER}: {exc}") from exc


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

