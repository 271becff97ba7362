"""The Rig: the cameras of a workstation and its options, built only from checked data.

`rig_from_dict` checks parsed TOML against the schema and builds the Rig (the file
reader adds the file's name and lines to its messages); the Rig's own changes are
checked the same way, so a Rig in memory is always one a file could hold.
"""

from __future__ import annotations

import typing
import warnings
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from engine.option import declared
from engine.rig.problem import IN_MEMORY, Problem, RigError, RigWarning, key_lines, show
from engine.rig.schema import (
    SIZE_KEYS,
    DeviceOptions,
    RecordingOptions,
    camera_table,
    checked_table,
    read_camera,
    read_section,
    read_sensor,
    summary_value,
    unique_cameras,
)
from engine.sources import mask_credentials
from engine.specs import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH, CameraSpec, SensorSpec
from engine.supervisor.health import Policy

DEFAULT_RIG_NAME = "rig"
DEMO_RIG_FILE = Path(__file__).resolve().parents[2] / "resources" / "demo-rig.toml"


@dataclass(frozen=True)
class Rig:
    """The cameras of a workstation and its recording options; changed only by copying.

    file_text is the TOML the rig was loaded from (None if built in memory): saving
    writes the rig's values into it, so the user's comments and layout stay.
    """

    name: str
    cameras: list[CameraSpec]
    recording: RecordingOptions = field(default_factory=RecordingOptions)
    sensors: list[SensorSpec] = field(default_factory=list)
    supervisor: Policy = field(default_factory=Policy)
    device: DeviceOptions = field(default_factory=DeviceOptions)
    file_text: str | None = field(default=None, compare=False, repr=False)

    def camera(self, camera_id: str) -> CameraSpec:
        """The camera with that id; KeyError names the id if there is none."""
        return self.cameras[self._index(camera_id)]

    def with_camera(self, spec: CameraSpec) -> Rig:
        """A copy with spec added, checked as a camera of a rig file would be."""
        if any(camera.camera_id == spec.camera_id for camera in self.cameras):
            raise RigError(
                f"{IN_MEMORY}: cameras: camera id {show(spec.camera_id)} is already in the rig"
            )
        added = _checked_camera(len(self.cameras), camera_table(spec))
        return replace(self, cameras=[*self.cameras, added])

    def without_camera(self, camera_id: str) -> Rig:
        """A copy without that camera; the last camera stays, as a rig needs one."""
        index = self._index(camera_id)
        if len(self.cameras) == 1:
            raise RigError(f"{IN_MEMORY}: cameras: {show(camera_id)} is the rig's only camera")
        return replace(self, cameras=self.cameras[:index] + self.cameras[index + 1:])

    def with_settings(self, camera_id: str, changes: dict[str, Any]) -> Rig:
        """A copy where width / height / fps in changes replace the camera's, the rest
        is merged into its settings; checked as a rig file would be."""
        index = self._index(camera_id)
        table = camera_table(self.cameras[index])
        for key, value in changes.items():
            if key in SIZE_KEYS:
                table[key] = value
            else:
                table.setdefault("settings", {})[key] = value
        cameras = list(self.cameras)
        cameras[index] = _checked_camera(index, table)
        return replace(self, cameras=cameras)

    def _index(self, camera_id: str) -> int:
        for index, camera in enumerate(self.cameras):
            if camera.camera_id == camera_id:
                return index
        raise KeyError(f"no camera {camera_id!r} in rig {self.name!r}")


def sections() -> dict[str, type]:
    """The Rig's option sections by key, in field order: recording, supervisor, device."""
    hints = typing.get_type_hints(Rig)
    return {f.name: hints[f.name] for f in fields(Rig) if is_dataclass(hints[f.name])}


def rig_keys() -> list[str]:
    """The keys of a rig file in the order a file has them: name, tables, arrays."""
    return ["name", *sections(), "cameras", "sensors"]


def rig_from_dict(
    data: dict[str, Any],
    origin: str = IN_MEMORY,
    text: str | None = None,
    *,
    base_dir: Path | None = None,
) -> Rig:
    """Check parsed rig data and build the Rig.

    origin names the data in messages; text (the file's text) lets them give line
    numbers and is kept for saving; relative file paths are taken from base_dir
    (default: the working folder). Retired keys give a RigWarning.
    """
    notes: list[Problem] = []
    try:
        rig = _rig(data, base_dir, notes)
    except Problem as problem:
        raise problem.error(origin, key_lines(text)) from None
    for note in notes:
        warnings.warn(RigWarning(note.message(origin, key_lines(text))), stacklevel=2)
    return replace(rig, file_text=text)


def _rig(data: Any, base_dir: Path | None, notes: list[Problem]) -> Rig:
    table = checked_table((), data, rig_keys())
    name = table.get("name", DEFAULT_RIG_NAME)
    if not isinstance(name, str) or not name.strip():
        raise Problem(("name",), f"must be a non-empty string, got {show(name)}")
    options: dict[str, Any] = {
        key: read_section(section, (key,), table.get(key, {}), base_dir, notes)
        for key, section in sections().items()
    }
    cameras = table.get("cameras", [])
    if not isinstance(cameras, list):
        raise Problem(("cameras",), f"must be [[cameras]] tables, got {show(cameras)}")
    if not cameras:
        raise Problem(("cameras",), "a rig needs at least one camera (a [[cameras]] table)")
    specs = [read_camera(index, camera, base_dir, notes) for index, camera in enumerate(cameras)]
    unique_cameras(specs)
    sensor_tables = table.get("sensors", [])
    if not isinstance(sensor_tables, list):
        raise Problem(("sensors",), f"must be [[sensors]] tables, got {show(sensor_tables)}")
    sensors: list[SensorSpec] = []
    for index, value in enumerate(sensor_tables):
        sensors.append(read_sensor(index, value, sensors))
    return Rig(name, specs, sensors=sensors, **options)


def _checked_camera(index: int, table: dict[str, Any]) -> CameraSpec:
    """A camera built in memory (not read from a file), checked like one that was; a
    retired setting (e.g. kept by an older engine's state database) gives a RigWarning."""
    notes: list[Problem] = []
    try:
        camera = read_camera(index, table, None, notes)
    except Problem as problem:
        raise problem.error(IN_MEMORY, {}) from None
    for note in notes:
        warnings.warn(RigWarning(note.message(IN_MEMORY, {})), stacklevel=3)
    return camera


def rig_summary(rig: Rig) -> dict[str, Any]:
    """The rig as JSON-ready data for status and events, with camera passwords masked."""
    summary: dict[str, Any] = {"name": rig.name}
    for key in sections():
        options = getattr(rig, key)
        summary[key] = {o.name: summary_value(getattr(options, o.name))
                        for o in declared(type(options))}
    summary["cameras"] = [
        {
            "id": spec.camera_id,
            "source": mask_credentials(spec.source),
            "width": spec.width,
            "height": spec.height,
            "fps": spec.fps,
            "settings": {key: mask_credentials(value) if isinstance(value, str) else value
                         for key, value in spec.settings.items()},
        }
        for spec in rig.cameras
    ]
    summary["sensors"] = [{"name": s.name, "source": mask_credentials(s.source)}
                          for s in rig.sensors]
    return summary


def demo_camera_settings(index: int) -> dict[str, Any]:
    """The demo's cameras free-run like real ones: each on its own clock, 1 ms of jitter,
    a missed frame in a thousand, and the second one at 29.97 against its nominal 30."""
    settings: dict[str, Any] = {"clock": "free", "jitter_ms": 1.0, "miss_probability": 0.001}
    return settings | {"rate_scale": 0.999} if index == 1 else settings


def demo_rig(
    cameras: int = 4,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: float = DEFAULT_FPS,
) -> Rig:
    """Synthetic cameras only, so the workstation runs (and is tested) without hardware."""
    return rig_from_dict({
        "name": "demo",
        "cameras": [{"id": f"cam{index}", "source": "synthetic", "width": width,
                     "height": height, "fps": fps, "settings": demo_camera_settings(index)}
                    for index in range(cameras)],
    })
