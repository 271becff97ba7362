"""One recording: its folder, its manifest, and the writers' outcomes gathered into it.

The controller creates it (checking the output folder before any frame is
spent), begins it at the first frame number, and finalizes it once every
writer has reported. The manifest is written atomically at each step, so a
reader never sees a half-written one and a crash leaves status "recording".
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.recording.encoder import CODECS
from engine.recording.errors import RecordingError
from engine.recording.manifest import utc_now_iso, write_manifest
from engine.recording.sync_report import write_sync_report

MANIFEST_FORMAT = 1


def _unique_folder(output_dir: Path, name: str | None) -> Path:
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
    """State of one recording, shared by the controller's threads."""

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
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._dropped_at_start: dict[str, int] = {}
        self._manifest: dict[str, Any] = {}

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
        shutil.rmtree(self.folder, ignore_errors=True)

    def begin(self, first_frame: int, dropped: dict[str, int]) -> None:
        self.first_frame = first_frame
        self._dropped_at_start = dict(dropped)
        self._manifest = {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "status": "recording",
            "started_utc": utc_now_iso(),
            "stopped_utc": None,
            "codec": self.codec,
            "fps": self.fps,
            "first_frame": first_frame,
            "last_frame": None,
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
        write_manifest(self.folder, self._manifest)

    def fail(self, message: str, last_frame: int) -> None:
        """A failure ends the recording at last_frame (the last complete frame set)."""
        with self._lock:
            self.errors.append(message)
            self.last_frame = last_frame

    def has_outcome(self, camera_id: str) -> bool:
        with self._lock:
            return camera_id in self._outcomes

    def add_outcome(self, camera_id: str, outcome: dict[str, Any]) -> bool:
        """Record one writer's result; True once every camera has reported."""
        with self._lock:
            self._outcomes[camera_id] = outcome
            if outcome.get("error"):
                self.errors.append(f"{camera_id}: {outcome['error']}")
            return len(self._outcomes) == len(self.cameras)

    def finalize(self, dropped: dict[str, int]) -> None:
        """Write the sync report and the final manifest, then wake whoever waits on `done`."""
        manifest = self._manifest
        try:
            for entry in manifest["cameras"]:
                outcome = self._outcomes.get(entry["id"], {})
                entry["frames"] = outcome.get("frames")
                entry["dropped"] = dropped.get(entry["id"], 0) - self._dropped_at_start.get(
                    entry["id"], 0
                )
            manifest["last_frame"] = max(
                (o.get("end_frame", self.first_frame) for o in self._outcomes.values()),
                default=self.first_frame,
            ) if self.last_frame is None else self.last_frame
            manifest["stopped_utc"] = utc_now_iso()
            try:
                manifest["sync"] = write_sync_report(self.folder, manifest)
            except Exception as exc:  # a report problem must not cost the recording
                self.errors.append(f"sync report: {exc}")
            self.status = "interrupted" if self.errors else "finalized"
            manifest["status"] = self.status
            manifest["errors"] = list(self.errors)
            write_manifest(self.folder, manifest)
        finally:
            self.done.set()

    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest

    def frame_counts(self) -> dict[str, int | None]:
        return {entry["id"]: entry["frames"] for entry in self._manifest.get("cameras", [])}
