"""One recording (a take): its folder, manifest, clock, and the writers' outcomes.

The controller creates it (checking the output folder before any frame is
spent), begins it at the first frame number, and once every writer has
reported, makes the files final (off the capture path).
The manifest is written atomically at each step, so a reader never sees a
half-written one and a crash leaves status "recording" for recovery to find.

A take owns its clock (`elapsed_s`, pauses excluded), so the service and the GUI show
the same figure. With auto_resume, the takes of one Session name each other.

A writing pause (`pause_at` / `resume_at`) is kept as the take's segments
(engine/recording/segments.py): the manifest is rewritten at each boundary while the group
is still gathered there, before any frame past it is captured, so a take a crash ends
during or right after a pause still says which frame numbers its files hold.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.recording.encoder import CODECS
from engine.recording.errors import RecordingError
from engine.recording.finalize import (
    finalize_recording,
    recording_lock,
    release_recording_lock,
    release_reserve,
)
from engine.recording.folder_readme import write_readme
from engine.recording.manifest import read_manifest, write_manifest
from engine.recording.segments import MANIFEST_KEY as SEGMENTS_KEY
from engine.recording.segments import recorded
from engine.recording.sensor_track import write_sensor_track
from engine.recording.sync_tolerance import MANIFEST_KEY as SYNC_TOLERANCE_KEY
from engine.utc import utc_now_iso

MANIFEST_FORMAT = 1


def check_take_name(name: str) -> None:
    """A take's name becomes a folder inside the output folder: it must stay a plain
    name there (no separator, no control character, not hidden, so not '.' or '..'),
    or recovery and the Recent list would never find the take."""
    if (not name or name.startswith(".") or "/" in name or "\\" in name
            or any(ord(c) < 32 for c in name)):
        raise RecordingError(
            f"recording name {name!r} is not a plain name: use letters, digits, spaces, "
            "'-' or '_', without '/', '\\', a leading '.', or '..'")


def _unique_folder(output_dir: Path, name: str | None) -> Path:
    if name is not None:
        check_take_name(name)
    base = name or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    folder, suffix = output_dir / base, 2
    while folder.exists():
        folder, suffix = output_dir / f"{base}_{suffix}", suffix + 1
    return folder


def prepare_output_folder(output_dir: Path) -> None:
    """Create the output folder and prove it is writable, or raise a clear RecordingError."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / f".write-test-{time.monotonic_ns()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RecordingError(f"output folder {output_dir} is not writable: {reason}") from exc


class Recording:
    """State of one recording, shared by the controller's threads.

    `writers_done` is set when every camera's writer has finished (capture is free
    for the next recording); `done` once the final files and manifest are written.
    """

    def __init__(
        self, folder: Path, codec: str, cameras: list[dict[str, Any]], fps: float
    ) -> None:
        self.folder = folder
        self.codec = codec
        self.fps = fps
        self.cameras = cameras
        self.first_frame = -1
        self.last_frame: int | None = None
        self.status = "recording"
        self.errors: list[str] = []
        self.writers_done = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: dict[str, str | None] = {}
        self._dropped_at_start: dict[str, int] = {}
        self._manifest: dict[str, Any] = {}
        self.multitrack = False
        self.session: dict[str, Any] | None = None  # takes of one session link each other
        self.rig: dict[str, Any] | None = None  # the take of a multi-machine rig it is part of
        self.planned_end = False  # last_frame was set ahead (a length), not by a failure
        self._lock_descriptor: int | None = recording_lock(folder)  # held till files are final
        self._clock = _TakeClock()
        # What is recorded so far: [first, last_exclusive] ranges, the last one open (None)
        # unless writing is paused.
        self._segments: list[list[int | None]] = []

    @classmethod
    def create(
        cls,
        output_dir: Path,
        name: str | None,
        codec: str,
        cameras: list[dict[str, Any]],
        fps: float,
    ) -> Recording:
        if codec not in CODECS:
            raise RecordingError(f"unknown codec {codec!r}: choose one of {', '.join(CODECS)}")
        prepare_output_folder(output_dir)
        folder = _unique_folder(output_dir, name)
        try:
            (folder / "timestamps").mkdir(parents=True)
        except OSError as exc:
            raise RecordingError(f"cannot create recording folder {folder}: {exc}") from exc
        try:
            write_readme(folder, [camera["id"] for camera in cameras])
        except RecordingError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(folder, codec, cameras, fps)

    @property
    def name(self) -> str:
        return self.folder.name

    def video_path(self, camera_id: str) -> Path:
        return self.folder / f"{camera_id}.mkv"

    def timestamps_path(self, camera_id: str) -> Path:
        return self.folder / "timestamps" / f"{camera_id}.csv"

    def discard(self) -> None:
        """Remove the folder of a recording that never started (no frame was written)."""
        self._release_lock()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _release_lock(self) -> None:
        if self._lock_descriptor is not None:
            release_recording_lock(self.folder, self._lock_descriptor)
            self._lock_descriptor = None

    @property
    def elapsed_s(self) -> float:
        """Seconds recorded so far (pauses excluded); frozen once the writers are done."""
        return self._clock.elapsed()

    @property
    def writing_paused(self) -> bool:
        """A writing pause is under way (the last segment is closed)."""
        with self._lock:
            return bool(self._segments) and self._segments[-1][1] is not None

    @property
    def segments(self) -> list[tuple[int, int | None]]:
        """The frame ranges recorded so far, the last one open (None) while writing."""
        with self._lock:
            return [(int(first or 0), last) for first, last in self._segments]

    def recorded_frames(self, reached: int) -> int:
        """Frame sets recorded once the group has published every frame below `reached`:
        the segments' frames below it (paused frames are not counted)."""
        return recorded(self.segments, reached)

    def pause_at(self, frame: int) -> None:
        """Writing pauses from frame number `frame` on (the last segment ends there); the
        manifest says so at once. A segment left without frames is dropped."""
        with self._lock:
            current = self._segments[-1]
            if frame <= int(current[0] or 0):
                self._segments.pop()
            else:
                current[1] = frame
            self._write_segments()

    def resume_at(self, frame: int) -> None:
        """Writing goes on from frame number `frame`: a new open segment, or the last one
        open again when the pause ended before any frame was skipped."""
        with self._lock:
            if self._segments and self._segments[-1][1] == frame:
                self._segments[-1][1] = None
            else:
                self._segments.append([frame, None])
            self._write_segments()

    def _write_segments(self) -> None:
        self._manifest[SEGMENTS_KEY] = [list(segment) for segment in self._segments]
        write_manifest(self.folder, self._manifest)

    def pause_clock(self) -> None:
        self._clock.pause()

    def resume_clock(self) -> None:
        self._clock.resume()

    def stop_clock(self) -> None:
        self._clock.stop()

    def begin(self, first_frame: int, dropped: dict[str, int]) -> None:
        self._clock.start()
        self.first_frame = first_frame
        self._segments = [[first_frame, None]]
        self._dropped_at_start = dict(dropped)
        self._manifest = {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "status": "recording",
            "layout": "files",
            "started_utc": utc_now_iso(),
            "stopped_utc": None,
            "codec": self.codec,
            "fps": self.fps,
            "multitrack": self.multitrack,
            "first_frame": first_frame,
            "last_frame": None,
            SEGMENTS_KEY: [[first_frame, None]],
            "cameras": [
                {
                    **camera,
                    "file": self.video_path(camera["id"]).name,
                    "timestamps": f"timestamps/{camera['id']}.csv",
                    "frames": None,
                    "dropped": None,
                }
                for camera in self.cameras
            ],
            "sync": None,
            "errors": [],
        }
        if self.session is not None:
            self._manifest["session"] = self.session
        if self.rig is not None:
            self._manifest["rig_take"] = self.rig
        write_manifest(self.folder, self._manifest)

    def set_sync_tolerance(self, tolerance_ms: float) -> None:
        """Keep the rig's sync tolerance in the manifest (for the sync report and verify);
        called as the take starts and written at once, so a recovered take keeps it too."""
        with self._lock:
            self._manifest[SYNC_TOLERANCE_KEY] = tolerance_ms
            write_manifest(self.folder, self._manifest)

    def fail(self, message: str, last_frame: int) -> None:
        """A failure ends the recording at last_frame (the last complete frame set)."""
        with self._lock:
            self.errors.append(message)
            self.last_frame = last_frame

    def has_outcome(self, camera_id: str) -> bool:
        with self._lock:
            return camera_id in self._outcomes

    def add_outcome(self, camera_id: str, error: str | None) -> bool:
        """Record one writer's end (error: why it ended early); True once every camera
        has reported."""
        with self._lock:
            self._outcomes[camera_id] = error
            if error:
                self.errors.append(f"{camera_id}: {error}")
            return len(self._outcomes) == len(self.cameras)

    def finalize(
        self, dropped: dict[str, int],
        progress: Callable[[float], None] | None = None,
        sensors: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Make the files final (cut to a common frame count) and write the final
        manifest, then wake whoever waits on `done`.

        If that fails, the files and the "recording" manifest stay as they are for
        `recover` to try again.
        """
        manifest = self._manifest
        try:
            for entry in manifest["cameras"]:
                entry["dropped"] = dropped.get(entry["id"], 0) - self._dropped_at_start.get(
                    entry["id"], 0
                )
            if self._lock_descriptor is not None:
                release_reserve(self._lock_descriptor)  # room for the index and manifest
            manifest["stopped_utc"] = utc_now_iso()
            manifest["errors"] = list(self.errors)
            write_manifest(self.folder, manifest)
            status = "interrupted" if self.errors else "finalized"
            finalize_recording(self.folder, status=status, multitrack=self.multitrack,
                               progress=progress)
            self._manifest = read_manifest(self.folder)
            if sensors:
                self._manifest["sensors"] = self._sensor_tracks(sensors)
                write_manifest(self.folder, self._manifest)
            self.status = status
        except (RecordingError, OSError) as exc:
            self.errors.append(f"finishing the files failed (kept for recovery): {exc}")
            self.status = "interrupted"
        finally:
            self._release_lock()
            self.done.set()

    def _sensor_tracks(self, sensors: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Each sensor's CSV sidecar, also written as a data track on the video time line."""
        entries = []
        for name, outcome in sensors.items():
            entry = {"name": name, "source": outcome["source"], "samples": outcome.get("samples"),
                     "file": None, "track": None, "error": outcome.get("error")}
            csv_path = Path(outcome["path"]) if outcome.get("path") else None
            if csv_path is not None and csv_path.is_file():
                entry["file"] = str(csv_path.relative_to(self.folder))
                track = csv_path.with_suffix(".mkv")
                try:
                    write_sensor_track(csv_path, track, self.fps, self._manifest["first_frame"],
                                       self._manifest.get(SEGMENTS_KEY))
                    entry["track"] = str(track.relative_to(self.folder))
                except (OSError, ValueError) as exc:
                    entry["error"] = entry["error"] or f"data track: {exc}"
            entries.append(entry)
        return entries

    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest

    def frame_counts(self) -> dict[str, int | None]:
        return {entry["id"]: entry["frames"] for entry in self._manifest.get("cameras", [])}


class _TakeClock:
    """Monotonic seconds from start to stop, minus the time spent paused."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._stopped: float | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0

    def start(self) -> None:
        self._started = time.monotonic()

    def pause(self) -> None:
        if self._paused_since is None:
            self._paused_since = time.monotonic()

    def resume(self) -> None:
        if self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None

    def stop(self) -> None:
        if self._stopped is None:
            self._stopped = time.monotonic()

    def elapsed(self) -> float:
        if self._started is None:
            return 0.0
        end = self._stopped if self._stopped is not None else time.monotonic()
        paused = self._paused_total
        if self._paused_since is not None:
            paused += end - self._paused_since
        return max(0.0, end - self._started - paused)


@dataclass
class Session:
    """auto_resume: consecutive takes of one recording session, named after the first
    (`<first>_take2`, ...) and linked in their manifests (id, take, previous).

    `waiting`: the last take was interrupted; the next starts once every camera runs.
    """

    output: Path
    codec: str
    multitrack: bool
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    take: int = 0
    first: str | None = None
    previous: str | None = None
    folder: str | None = None
    waiting: bool = False

    def next_take(self, name: str | None) -> tuple[str | None, dict[str, Any]]:
        """Count the next take; its folder name and the link its manifest keeps."""
        self.take += 1
        self.waiting = False
        if self.first is not None:
            name = f"{self.first}_take{self.take}"
        return name, {"id": self.id, "take": self.take, "previous": self.previous}

    def started(self, recording: Recording) -> None:
        self.first = self.first or recording.name
        self.previous = recording.name
        self.folder = str(recording.folder)
