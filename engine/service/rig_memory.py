"""What the state database keeps of the rig, so an engine restart brings it back as it was.

Every camera (source, geometry, settings) and whether the user wants it running: cameras
added at run time come back, and a camera the user stopped stays stopped. A different
rig starts afresh. Without a database (None) nothing is kept. No password is kept: a
source is saved with its password masked, and comes back with the password from the rig
file (same camera, same masked source); a camera added at run time with a password must
be added again (or put in the rig file) after a restart. Every saved row is checked
before it is used: a row that does not read back as RigMemory wrote it means a damaged
database, which is moved aside (the engine then starts from the rig file alone).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from engine.rig import Rig, RigError
from engine.sources import PASSWORD_MASK, mask_credentials
from engine.specs import CameraSpec
from engine.state.store import StateStore


class RigMemory:
    """The rig's cameras in the state database."""

    def __init__(self, store: StateStore | None) -> None:
        self._store = store

    def restore(self, rig: Rig) -> tuple[Rig, set[str], list[str]]:
        """(the rig as the last engine left it, the cameras the user stopped, why a saved
        camera could not come back) for an engine starting with `rig`."""
        store = self._store
        if store is None:
            return rig, set(), []
        try:
            rows = store.cameras()
            saved = {row["id"]: _spec_of(row) for row in rows}
            stopped = {row["id"] for row in rows if row["desired"] == "stopped"}
            same_rig = store.meta("rig") == rig.name
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
            store.start_afresh(f"its saved cameras do not read back: {type(exc).__name__}: {exc}")
            saved, stopped, same_rig = {}, set(), True
        if not same_rig:
            for camera_id in saved:
                store.remove_camera(camera_id)
            saved, stopped = {}, set()
        problems = []
        for camera_id, spec in list(saved.items()):
            source = _unmasked(spec.source, camera_id, rig)
            if source is None:
                problems.append(f"camera {camera_id} was not brought back: its password is "
                                "not kept in the state database; add it again, or put it in "
                                "the rig file")
                del saved[camera_id]
                continue
            spec = replace(spec, source=source)
            try:
                rig = (rig.with_settings(camera_id, {**spec.settings, **_geometry(spec)})
                       if any(c.camera_id == camera_id for c in rig.cameras)
                       else rig.with_camera(spec))
            except RigError as exc:
                problems.append(f"cannot restore camera {camera_id}: {exc}")
        store.set_meta("rig", rig.name)
        for spec in rig.cameras:
            self.remember(spec, spec.camera_id in stopped)
        return rig, stopped, problems

    def remember(self, spec: CameraSpec, stopped: bool) -> None:
        """Keep one camera as it is now, and whether it should run."""
        if self._store is not None:
            self._store.put_camera(spec.camera_id, mask_credentials(spec.source),
                                   {**_geometry(spec), "settings": spec.settings},
                                   "stopped" if stopped else "running")

    def replace(self, rig: Rig, stopped: set[str]) -> None:
        """Keep a whole rig: cameras it no longer has are forgotten."""
        if self._store is None:
            return
        kept = {c.camera_id for c in rig.cameras}
        for row in self._store.cameras():
            if row["id"] not in kept:
                self._store.remove_camera(row["id"])
        self._store.set_meta("rig", rig.name)
        for spec in rig.cameras:
            self.remember(spec, spec.camera_id in stopped)


def _unmasked(saved_source: str, camera_id: str, rig: Rig) -> str | None:
    """The source to run a saved camera with: as saved when it hid no password, else the
    rig file's source of that camera if it masks to the same; None: the password is lost."""
    for spec in rig.cameras:
        if spec.camera_id == camera_id and mask_credentials(spec.source) == saved_source:
            return spec.source
    if f":{PASSWORD_MASK}@" in saved_source:  # mask_credentials' mark: not kept
        return None
    return saved_source  # no password (or a database from before passwords were masked)


def _geometry(spec: CameraSpec) -> dict[str, Any]:
    return {"width": spec.width, "height": spec.height, "fps": spec.fps}


def _spec_of(row: dict[str, Any]) -> CameraSpec:
    """A camera as remember() keeps it; ValueError (or TypeError, KeyError) names what
    does not read back so."""
    saved = row["settings"]
    if not (isinstance(row["id"], str) and row["id"] and isinstance(row["source"], str)
            and row["source"] and isinstance(saved, dict)
            and isinstance(saved.get("settings"), dict)
            and row["desired"] in ("running", "stopped")):
        raise ValueError(f"camera row {row['id']!r} is not as the engine wrote it")
    geometry = saved["width"], saved["height"], saved["fps"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in geometry):
        raise ValueError(f"camera {row['id']!r} has no numeric width, height and fps")
    return CameraSpec(row["id"], row["source"], int(saved["width"]), int(saved["height"]),
                      float(saved["fps"]), dict(saved["settings"]))
