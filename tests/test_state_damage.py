"""A damaged state database never stops the engine from starting (issue: no crash loop).

Damage as a power cut or a stray tool leaves it: junk over the file's pages, rows whose
values are not what the engine wrote (not JSON, '{}', wrong types), missing tables. Each
time the store opens and the rig is restored, the engine goes on from the rig file, and
a database it moved aside says why.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rig import demo_rig
from engine.service.rig_memory import RigMemory
from engine.state.store import StateStore

TABLES = ("cameras", "recordings", "events", "meta")


def healthy_database(path: Path) -> None:
    """What an engine with the demo rig (one camera stopped by the user) leaves behind."""
    store = StateStore(path)
    rig = demo_rig(3)
    memory = RigMemory(store)
    memory.replace(rig, {rig.cameras[1].camera_id})
    store.set_status(rig.cameras[0].camera_id, "running")
    store.set_recording("/rec/take", "finalized", {"cam0": 30})
    store.close()


def starts(path: Path) -> StateStore:
    """Open and restore as the engine does at start; the store is usable afterwards."""
    store = StateStore(path)
    rig, _stopped, _problems = RigMemory(store).restore(demo_rig(3))
    assert {c.camera_id for c in demo_rig(3).cameras} <= {c.camera_id for c in rig.cameras}
    store.put_camera("extra", "synthetic", {"width": 64, "height": 48, "fps": 5.0,
                                            "settings": {}})
    assert store.camera("extra") is not None
    store.events(limit=5)
    store.recordings()
    return store


@pytest.mark.parametrize("column, value", [
    ("settings", "not json {"),
    ("settings", "{}"),
    ("settings", '{"width": "wide", "height": 1, "fps": 1, "settings": {}}'),
    ("settings", "[]"),
    ("source", ""),
    ("desired", "sideways"),
    ("id", ""),
])
def test_a_camera_row_that_does_not_read_back_moves_the_database_aside(tmp_path, column, value):
    path = tmp_path / "engine.db"
    healthy_database(path)
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE cameras SET {column} = ? WHERE rowid = 1", (value,))
    store = starts(path)
    try:
        assert store.moved_aside is not None and store.moved_aside.exists()
        assert "do not read back" in store.damage
    finally:
        store.close()


@pytest.mark.parametrize("table", TABLES)
def test_a_missing_table_moves_the_database_aside(tmp_path, table):
    path = tmp_path / "engine.db"
    healthy_database(path)
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE {table}")
    store = starts(path)
    try:
        assert store.moved_aside is not None
        assert "no such table" in store.damage or "no such column" in store.damage
    finally:
        store.close()


@settings(max_examples=60, deadline=None)
@given(hits=st.lists(st.tuples(st.integers(0, 2**20), st.binary(min_size=1, max_size=64)),
                     min_size=1, max_size=8))
def test_junk_over_any_pages_never_stops_a_start(hits):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "engine.db"
        healthy_database(path)
        data = bytearray(path.read_bytes())
        for offset, junk in hits:
            at = offset % len(data)
            data[at:at + len(junk)] = junk
        path.write_bytes(bytes(data[: max(len(data), 1)]))
        starts(path).close()


@settings(max_examples=60, deadline=None)
@given(column=st.sampled_from(["id", "source", "settings", "desired", "status", "restarts"]),
       value=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True),
                       st.text(max_size=40),
                       st.binary(max_size=20),
                       st.dictionaries(st.text(max_size=8), st.integers(), max_size=3)
                       .map(json.dumps)))
def test_any_value_in_a_camera_row_never_stops_a_start(column, value):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "engine.db"
        healthy_database(path)
        try:
            with sqlite3.connect(path) as db:
                db.execute(f"UPDATE cameras SET {column} = ? WHERE rowid = 1", (value,))
        except sqlite3.IntegrityError:  # NOT NULL: SQLite itself refuses this damage
            return
        starts(path).close()
