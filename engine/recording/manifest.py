"""recording.json: what a recording folder holds, written so it is never half a file.

The manifest is rewritten at start, stop and recovery; a crash in the middle of a
rewrite must leave either the old or the new version, hence write-temp-then-rename.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import durable
from engine.recording.errors import RecordingError

MANIFEST_NAME = "recording.json"
MANIFEST_FORMAT = 1
STATUSES = ("recording", "finalized", "interrupted", "recovered")



def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """engine.durable's atomic JSON write; RecordingError naming the file on failure."""
    try:
        durable.write_json_atomic(path, data)
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_manifest(recording_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomically replace recording_dir/recording.json."""
    write_json_atomic(Path(recording_dir) / MANIFEST_NAME, manifest)


def read_manifest(recording_dir: Path) -> dict[str, Any]:
    """Load recording_dir/recording.json; RecordingError naming the file if absent or broken."""
    path = Path(recording_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RecordingError(f"manifest {path} is missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read manifest {path}: {exc}") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(f"manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise RecordingError(f"manifest {path} is not a JSON object")
    return manifest


def list_recordings(root: Path, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` recordings directly under root, newest first, as
    {"folder", "status", "frames": {camera: count or None}, "started_utc"}; folders
    without a readable manifest are not recordings and are skipped."""
    try:
        folders = [child for child in root.iterdir() if child.is_dir()]
    except OSError:
        return []
    found: list[dict[str, Any]] = []
    for folder in folders:
        try:
            manifest = read_manifest(folder)
        except RecordingError:
            continue
        cameras = manifest.get("cameras") or []
        found.append({
            "folder": str(folder), "status": str(manifest.get("status", "?")),
            "frames": {c["id"]: c.get("frames") for c in cameras
                       if isinstance(c, dict) and "id" in c},
            "started_utc": str(manifest.get("started_utc") or ""),
        })
    found.sort(key=lambda recording: recording["started_utc"], reverse=True)
    return found[:limit]
