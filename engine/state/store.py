"""The engine's state that survives restarts, in SQLite (WAL).

Cameras keep their source, settings, desired state (what the user asked for) and
status (what the supervisor saw), with `status_updated_at` written only when the
status changes: no heartbeat writes. Every change is also an event row, so the
history of restarts and outages can be read back. Recordings keep their status.

A database that cannot be opened, fails SQLite's quick check, lacks a table or column,
or holds a row that does not read back as what was written (RigMemory checks the rows it
restores) is moved aside (kept for inspection) and a fresh one is created: a damaged
file never puts the engine in a crash loop, it starts from the rig file.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2

# Each migration takes the schema from version i to i + 1.
_MIGRATIONS = (
    """
    CREATE TABLE cameras (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        desired TEXT NOT NULL DEFAULT 'running',
        status TEXT NOT NULL DEFAULT 'stopped',
        status_updated_at REAL,
        last_error TEXT,
        restarts INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE recordings (
        folder TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        updated_at REAL NOT NULL,
        frames TEXT
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        camera TEXT,
        kind TEXT NOT NULL,
        status TEXT,
        detail TEXT
    );
    """,
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)

def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Serialize calls: the engine's threads (supervisor, commands) share one connection."""

    @functools.wraps(method)
    def locked(self: StateStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


# The columns every table must have: a missing table or column is damage.
_COLUMNS = {
    "cameras": "id, source, settings, desired, status, status_updated_at, last_error, restarts",
    "recordings": "folder, status, updated_at, frames",
    "events": "id, at, camera, kind, status, detail",
    "meta": "key, value",
}

# Statuses a camera comes back from at start-up (see `cameras_to_restore`).
RESTORABLE = ("starting", "running", "reconnecting", "stalled", "crashed", "restarting")


class StateStore:
    """One engine's state database; its methods may be called from any thread."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        self.moved_aside: Path | None = None
        self.damage: str | None = None  # what was wrong with a database moved aside
        try:
            self._db = self._open()
        except (sqlite3.DatabaseError, ValueError) as exc:
            self._move_aside(str(exc))
            self._db = self._open()

    @_locked
    def start_afresh(self, reason: str) -> None:
        """The database held something this engine cannot use (`reason`): move it aside
        and continue on a fresh one."""
        self._db.close()
        self._move_aside(reason)
        self._db = self._open()

    def _move_aside(self, reason: str) -> None:
        self.moved_aside = self.path.with_name(
            f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        self.path.rename(self.moved_aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.damage = (
            f"state database {self.path} was unreadable ({reason}); moved to "
            f"{self.moved_aside.name} and started afresh"
        )

    def _open(self) -> sqlite3.Connection:
        _private(self.path)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.text_factory = _text  # damaged text reads as text, never as an exception
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version} is newer than this engine")
            for number in range(version, SCHEMA_VERSION):
                with db:
                    db.executescript(_MIGRATIONS[number])
                    db.execute(f"PRAGMA user_version={number + 1}")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick check: {check}")
            for table, columns in _COLUMNS.items():
                db.execute(f"SELECT {columns} FROM {table} LIMIT 0")  # names from _COLUMNS
        except (sqlite3.DatabaseError, ValueError):
            db.close()
            raise
        return db

    @_locked
    def close(self) -> None:
        self._db.close()

    @property
    def writes(self) -> int:
        """Rows changed since opening (tests use it to prove there are no idle writes)."""
        return self._db.total_changes

    # --- cameras -----------------------------------------------------------------------

    @_locked
    def put_camera(self, camera_id: str, source: str, settings: dict[str, Any],
                   desired: str = "running") -> None:
        """Add a camera or update its configuration (not its status)."""
        self._db.execute(
            "INSERT INTO cameras (id, source, settings, desired) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET source = excluded.source, "
            "settings = excluded.settings, desired = excluded.desired",
            (camera_id, source, json.dumps(settings, sort_keys=True), desired),
        )

    @_locked
    def remove_camera(self, camera_id: str) -> None:
        self._db.execute("DELETE FROM cameras WHERE id = ?", (camera_id,))

    @_locked
    def set_desired(self, camera_id: str, desired: str) -> None:
        """What the user asked for: "running" or "stopped"."""
        self._db.execute("UPDATE cameras SET desired = ? WHERE id = ? AND desired != ?",
                         (desired, camera_id, desired))

    @_locked
    def set_status(self, camera_id: str, status: str, error: str | None = None) -> bool:
        """Record a status; writes (and logs an event) only if it changed. True if it did."""
        row = self.camera(camera_id)
        if row is None:
            return False
        if row["status"] == status and (error is None or error == row["last_error"]):
            return False
        now = self.clock()
        with self._db:
            self._db.execute(
                "UPDATE cameras SET status = ?, status_updated_at = ?, "
                "last_error = COALESCE(?, last_error) WHERE id = ?",
                (status, now, error, camera_id),
            )
            self._event(now, camera_id, "status", status, error)
        return True

    @_locked
    def count_restart(self, camera_id: str, reason: str) -> int:
        """One more restart of this camera; returns how many it has had."""
        now = self.clock()
        with self._db:
            self._db.execute("UPDATE cameras SET restarts = restarts + 1 WHERE id = ?",
                             (camera_id,))
            self._event(now, camera_id, "restart", None, reason)
        row = self.camera(camera_id)
        return int(row["restarts"]) if row else 0

    @_locked
    def camera(self, camera_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM cameras WHERE id = ?", (camera_id,)).fetchone()
        return _camera_dict(row) if row else None

    @_locked
    def cameras(self) -> list[dict[str, Any]]:
        return [_camera_dict(r) for r in self._db.execute("SELECT * FROM cameras ORDER BY id")]

    def cameras_to_restore(self) -> list[dict[str, Any]]:
        """Cameras to bring back at start-up: the user wants them running and they were
        running or failing when the engine went away. A camera the user stopped stays so."""
        return [c for c in self.cameras()
                if c["desired"] == "running" and c["status"] in RESTORABLE]

    @_locked
    def mark_running_as_crashed(self) -> int:
        """On SIGTERM: running cameras are marked crashed, so a restart brings them back."""
        now = self.clock()
        with self._db:
            running = [r["id"] for r in self._db.execute(
                "SELECT id FROM cameras WHERE status = 'running'")]
            for camera_id in running:
                self._db.execute("UPDATE cameras SET status = 'crashed', status_updated_at = ? "
                                 "WHERE id = ?", (now, camera_id))
                self._event(now, camera_id, "status", "crashed", "engine shut down")
        return len(running)

    @_locked
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @_locked
    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # --- recordings and history ----------------------------------------------------------

    @_locked
    def set_recording(self, folder: str, status: str, frames: dict[str, Any] | None = None) -> None:
        self._db.execute(
            "INSERT INTO recordings (folder, status, updated_at, frames) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(folder) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at, frames = COALESCE(excluded.frames, frames)",
            (folder, status, self.clock(), json.dumps(frames) if frames is not None else None),
        )

    @_locked
    def recordings(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM recordings ORDER BY updated_at DESC")
        return [{**dict(r), "frames": _json_or_none(r["frames"])} for r in rows]

    @_locked
    def events(self, camera_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first."""
        if camera_id is None:
            rows = self._db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._db.execute(
                "SELECT * FROM events WHERE camera = ? ORDER BY id DESC LIMIT ?", (camera_id, limit)
            )
        return [dict(r) for r in rows]

    def _event(self, at: float, camera_id: str | None, kind: str, status: str | None,
               detail: str | None) -> None:
        self._db.execute(
            "INSERT INTO events (at, camera, kind, status, detail) VALUES (?, ?, ?, ?, ?)",
            (at, camera_id, kind, status, detail),
        )


def _private(path: Path) -> None:
    """The state folder only its user can enter (0700) and the database only its user
    can read (0600): it names cameras, hosts and errors. SQLite gives the -wal and -shm
    files the database's own mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists():
            file.chmod(0o600)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _json_or_none(text: str | None) -> Any:
    """A column of informative JSON (a recording's frame counts): unreadable is unknown."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _camera_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {**dict(row), "settings": json.loads(row["settings"])}
