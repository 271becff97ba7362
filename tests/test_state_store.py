"""The engine's persistent state: SQLite, written only on change, robust to damage."""

from __future__ import annotations

import sqlite3

import pytest

from engine.state.store import SCHEMA_VERSION, StateStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    clock = Clock()
    opened = StateStore(tmp_path / "state.db", clock)
    opened.clock_ = clock
    yield opened
    opened.close()


def test_status_is_written_only_when_it_changes(store):
    store.put_camera("cam0", "synthetic", {"brightness": 5})
    assert store.set_status("cam0", "running")
    first_stamp = store.camera("cam0")["status_updated_at"]
    writes = store.writes
    store.clock_.now += 60
    for _ in range(50):  # a stable camera, health-checked once a second
        assert not store.set_status("cam0", "running")
    assert store.writes == writes  # no heartbeat writes
    assert store.camera("cam0")["status_updated_at"] == first_stamp
    assert store.set_status("cam0", "crashed", "process exited (code -9)")
    camera = store.camera("cam0")
    assert camera["status"] == "crashed" and camera["status_updated_at"] == 1060.0
    assert camera["last_error"] == "process exited (code -9)"
    assert camera["settings"] == {"brightness": 5}


def test_events_keep_the_history_newest_first(store):
    store.put_camera("cam0", "synthetic", {})
    store.set_status("cam0", "running")
    store.clock_.now += 5
    store.set_status("cam0", "reconnecting", "no frame for 2 s")
    assert store.count_restart("cam0", "stalled") == 1
    kinds = [(e["kind"], e["status"]) for e in store.events("cam0")]
    assert kinds == [("restart", None), ("status", "reconnecting"), ("status", "running")]


def test_restore_brings_back_running_and_crashed_cameras_not_stopped_ones(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    for camera_id in ("a", "b", "c"):
        store.put_camera(camera_id, "synthetic", {})
    store.set_status("a", "running")
    store.set_status("b", "crashed", "boom")
    store.set_status("c", "running")
    store.set_desired("c", "stopped")  # the user stopped it
    store.set_status("c", "stopped")
    assert store.mark_running_as_crashed() == 1  # SIGTERM: "a" was running
    store.close()
    reopened = StateStore(path)  # the engine starts again
    assert [c["id"] for c in reopened.cameras_to_restore()] == ["a", "b"]
    assert reopened.camera("a")["status"] == "crashed"
    reopened.close()


def test_recordings_are_remembered(store):
    store.set_recording("/rec/one", "recording")
    store.clock_.now += 1
    store.set_recording("/rec/one", "finalized", {"cam0": 300})
    store.clock_.now += 1
    store.set_recording("/rec/two", "recording")
    assert [(r["folder"], r["status"]) for r in store.recordings()] == [
        ("/rec/two", "recording"), ("/rec/one", "finalized")]
    assert store.recordings()[1]["frames"] == {"cam0": 300}


def test_a_corrupt_database_is_moved_aside_and_replaced(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    store = StateStore(path)
    try:
        assert store.moved_aside is not None and store.moved_aside.exists()
        assert "moved to" in store.damage and "state.db" in store.damage
        store.put_camera("cam0", "synthetic", {})  # and the fresh one works
        assert store.camera("cam0")["source"] == "synthetic"
    finally:
        store.close()


def test_schema_is_versioned_and_wal(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_a_database_from_a_newer_engine_is_not_touched_in_place(tmp_path):
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    db.close()
    store = StateStore(path)
    try:
        assert store.moved_aside is not None  # kept for the newer engine, not migrated down
        assert "newer" in store.damage
    finally:
        store.close()


def test_a_database_of_an_older_engine_is_migrated_and_keeps_its_cameras(tmp_path):
    from engine.state.store import _MIGRATIONS

    path = tmp_path / "engine.db"
    with sqlite3.connect(path) as old:  # what the first engine version left behind
        old.executescript(_MIGRATIONS[0])
        old.execute("PRAGMA user_version=1")
        old.execute("INSERT INTO cameras (id, source, status) VALUES ('cam0', 'synthetic', "
                    "'running')")
    store = StateStore(path)
    try:
        assert store.moved_aside is None
        assert [c["id"] for c in store.cameras_to_restore()] == ["cam0"]
        store.set_meta("rig", "bench")
        assert store.meta("rig") == "bench"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
