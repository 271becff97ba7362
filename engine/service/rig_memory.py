"""What the state database keeps of the rig, so an engine restart brings it back as it was.

Every camera (source, geometry, settings) and whether the user wants it running: cameras
added at run time come back, and a camera the user stopped stays stopped. A different
rig starts afresh. Without a database (None) nothing is kept.
"""

from __future__ import annotations

from typing import Any

from engine.rig import Rig, RigError
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
        saved = {c["id"]: c for c in store.cameras()}
        if store.meta("rig") != rig.name:
            for camera_id in saved:
                store.remove_camera(camera_id)
            saved = {}
        problems = []
        for camera_id, row in saved.items():
            spec = _spec_of(row)
            try:
                rig = (rig.with_settings(camera_id, {**row["settings"]["settings"],
                                                     **_geometry(spec)})
                       if any(c.camera_id == camera_id for c in rig.cameras)
                       else rig.with_camera(spec))
            except RigError as exc:
                problems.append(f"cannot restore camera {camera_id}: {exc}")
        stopped = {i for i, row in saved.items() if row["desired"] == "stopped"}
        store.set_meta("rig", rig.name)
        for spec in rig.cameras:
            self.remember(spec, spec.camera_id in stopped)
        return rig, stopped, problems

    def remember(self, spec: CameraSpec, stopped: bool) -> None:
        """Keep one camera as it is now, and whether it should run."""
        if self._store is not None:
            self._store.put_camera(spec.camera_id, spec.source,
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


def _geometry(spec: CameraSpec) -> dict[str, Any]:
    return {"width": spec.width, "height": spec.height, "fps": spec.fps}


def _spec_of(row: dict[str, Any]) -> CameraSpec:
    """A camera as the state database keeps it."""
    saved = row["settings"]
    return CameraSpec(row["id"], row["source"], int(saved["width"]), int(saved["height"]),
                      float(saved["fps"]), dict(saved.get("settings", {})))
