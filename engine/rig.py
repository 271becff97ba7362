"""Rig files: the cameras of a workstation and its recording options, in TOML.

A rig file is written by hand, so loading it checks everything before any process
starts and every error names the file, the line (when it can be found) and the key:
`rig.toml:14: cameras[1].fps: must be a number in (0, 1000], got "fast"`.
Paths in a rig file may start with "~"; relative ones are taken from the file's folder.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import stat
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from engine.durable import fsync_path
from engine.sensors.base import SensorError
from engine.sensors.factory import validate_sensor
from engine.sources import (
    ACCEPTED,
    SettingRejected,
    SourceError,
    SourceKind,
    mask_credentials,
    parse_source,
    validate_size_fps,
)
from engine.specs import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH, CameraSpec, SensorSpec
from engine.supervisor.health import Policy

# The same as engine.recording.encoder.CODECS (a test keeps them equal); repeated so that
# reading a rig file does not import PyAV.
RIG_CODECS = ("h264", "mjpeg", "ffv1")
MAX_CHUNK_LENGTH_S = 3600.0
DEFAULT_RIG_NAME = "rig"
DEMO_RIG_FILE = Path(__file__).resolve().parent.parent / "resources" / "demo-rig.toml"

RIG_KEYS = ("name", "recording", "supervisor", "device", "cameras", "sensors")
SENSOR_KEYS = ("name", "source", "settings")
RECORDING_KEYS = (
    "output", "codec", "chunk_length_s", "device_ready_timeout_s", "health_check_interval_s",
    "session_join_timeout_s", "max_queue_size", "multitrack", "auto_resume",
)
SUPERVISOR_KEYS = tuple(f.name for f in fields(Policy))
DEVICE_KEYS = ("device_id", "disk_warn_below_gb", "disk_stop_below_gb", "network_targets",
               "button_chip", "button_line", "network_setup_command")
CAMERA_KEYS = ("id", "source", "width", "height", "fps", "settings")
SIZE_KEYS = ("width", "height", "fps")
IN_MEMORY = "<rig>"

KeyPath = tuple[str | int, ...]


class RigError(ValueError):
    """A rig that cannot be used; the message names the file, the line if known, and the key."""


def default_output_dir() -> Path:
    """Recordings go to the user's Videos folder unless the rig says otherwise."""
    return Path(platformdirs.user_videos_dir()) / "recordings"


@dataclass(frozen=True)
class RecordingOptions:
    """Where and how a rig records, and the engine's timing limits for it."""

    output_dir: Path = field(default_factory=default_output_dir)
    codec: str = "h264"
    chunk_length_s: float = 10.0
    device_ready_timeout_s: float = 7.5
    health_check_interval_s: float = 1.0
    session_join_timeout_s: float = 10.0
    max_queue_size: int = 400
    multitrack: bool = False  # also assemble one MKV holding every camera's track
    auto_resume: bool = False  # after a camera failure ends a take, start the next one


@dataclass(frozen=True)
class DeviceOptions:
    """The workstation itself: its name, the low-disk limits, the network probe targets
    ("host:port") and an optional GPIO record button with its network-setup hook."""

    device_id: str = ""  # empty: the host name
    disk_warn_below_gb: float = 5.0
    disk_stop_below_gb: float = 1.0
    network_targets: tuple[str, ...] = ("8.8.8.8:443", "1.1.1.1:443")
    button_chip: str = ""  # e.g. "/dev/gpiochip0"; empty: no button
    button_line: int = 17
    network_setup_command: str = ""


@dataclass(frozen=True)
class Rig:
    """The cameras of a workstation and its recording options; changed only by copying."""

    name: str
    cameras: list[CameraSpec]
    recording: RecordingOptions = field(default_factory=RecordingOptions)
    sensors: list[SensorSpec] = field(default_factory=list)
    supervisor: Policy = field(default_factory=Policy)
    device: DeviceOptions = field(default_factory=DeviceOptions)

    def camera(self, camera_id: str) -> CameraSpec:
        """The camera with that id; KeyError names the id if there is none."""
        return self.cameras[self._index(camera_id)]

    def with_camera(self, spec: CameraSpec) -> Rig:
        """A copy with spec added, checked as a camera of a rig file would be."""
        if any(camera.camera_id == spec.camera_id for camera in self.cameras):
            raise RigError(
                f"{IN_MEMORY}: cameras: camera id {_show(spec.camera_id)} is already in the rig"
            )
        added = _checked_camera(len(self.cameras), _camera_table(spec))
        return replace(self, cameras=[*self.cameras, added])

    def without_camera(self, camera_id: str) -> Rig:
        """A copy without that camera; the last camera stays, as a rig needs one."""
        index = self._index(camera_id)
        if len(self.cameras) == 1:
            raise RigError(f"{IN_MEMORY}: cameras: {_show(camera_id)} is the rig's only camera")
        return replace(self, cameras=self.cameras[:index] + self.cameras[index + 1:])

    def with_settings(self, camera_id: str, changes: dict[str, Any]) -> Rig:
        """A copy where width / height / fps in changes replace the camera's, the rest
        is merged into its settings; checked as a rig file would be."""
        index = self._index(camera_id)
        table = _camera_table(self.cameras[index])
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


# --- loading -------------------------------------------------------------------------


def load_rig(path: Path) -> Rig:
    """Read and check a rig file; raise RigError naming the file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RigError(f"{path}: cannot read the rig file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RigError(f"{path}: not a text file (UTF-8): {exc.reason}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(str(path), exc) from None
    return rig_from_dict(data, str(path), text, base_dir=path.parent.absolute())


def rig_from_dict(
    data: dict[str, Any],
    origin: str = IN_MEMORY,
    text: str | None = None,
    *,
    base_dir: Path | None = None,
) -> Rig:
    """Check parsed rig data and build the Rig.

    origin names the data in messages; text (the file's text) lets them give line
    numbers; relative file paths are taken from base_dir (default: the working folder).
    """
    try:
        return _rig(data, base_dir)
    except _Problem as problem:
        raise problem.error(origin, _key_lines(text) if text else {}) from None


class _Problem(Exception):
    """What is wrong at a key path, raised before the origin and line numbers are known."""

    def __init__(self, path: KeyPath, text: str, lines_of: tuple[KeyPath, ...] = ()) -> None:
        super().__init__(text)
        self.path = path
        self.text = text
        self.lines_of = lines_of  # other places the message refers to, e.g. a repeated id

    def error(self, origin: str, lines: dict[KeyPath, int]) -> RigError:
        line = _line_of(lines, self.path)
        where = f"{origin}:{line}" if line else origin
        text = self.text
        if self.lines_of:
            found = [_line_of(lines, path) for path in self.lines_of]
            places = (f"lines {found[0]} and {found[1]}" if all(found)
                      else " and ".join(_key_name(path) for path in self.lines_of))
            text += f" ({places})"
        key = _key_name(self.path)
        return RigError(f"{where}: {key}: {text}" if key else f"{where}: {text}")


def _rig(data: Any, base_dir: Path | None) -> Rig:
    table = _table((), data, RIG_KEYS)
    name = table.get("name", DEFAULT_RIG_NAME)
    if not isinstance(name, str) or not name.strip():
        raise _Problem(("name",), f"must be a non-empty string, got {_show(name)}")
    recording = _recording(table.get("recording", {}), base_dir)
    cameras = table.get("cameras", [])
    if not isinstance(cameras, list):
        raise _Problem(("cameras",), f"must be [[cameras]] tables, got {_show(cameras)}")
    if not cameras:
        raise _Problem(("cameras",), "a rig needs at least one camera (a [[cameras]] table)")
    specs = [_camera(index, camera, base_dir) for index, camera in enumerate(cameras)]
    _check_unique(specs)
    sensors = table.get("sensors", [])
    if not isinstance(sensors, list):
        raise _Problem(("sensors",), f"must be [[sensors]] tables, got {_show(sensors)}")
    supervisor = _supervisor(table.get("supervisor", {}))
    device = _device(table.get("device", {}))
    return Rig(name, specs, recording, _sensors(sensors), supervisor, device)


def _device(value: Any) -> DeviceOptions:
    """[device]: the workstation's id, disk limits, network probes and record button."""
    options: dict[str, Any] = {}
    for key, item in _table(("device",), value, DEVICE_KEYS).items():
        path = ("device", key)
        if key in ("disk_warn_below_gb", "disk_stop_below_gb"):
            options[key] = _positive(path, item, math.inf)
        elif key == "button_line":
            if isinstance(item, bool) or not isinstance(item, int) or item < 0:
                raise _Problem(path, f"must be an integer >= 0, got {_show(item)}")
            options[key] = item
        elif key == "network_targets":
            if not isinstance(item, list) or not all(
                    isinstance(t, str) and re.fullmatch(r"[^:\s]+:\d{1,5}", t) for t in item):
                raise _Problem(path, f'must be a list of "host:port", got {_show(item)}')
            options[key] = tuple(item)
        elif not isinstance(item, str):
            raise _Problem(path, f"must be a string, got {_show(item)}")
        else:
            options[key] = item
    device = DeviceOptions(**options)
    if device.disk_stop_below_gb > device.disk_warn_below_gb:
        raise _Problem(("device", "disk_stop_below_gb"), "must not be above disk_warn_below_gb")
    return device


def _supervisor(value: Any) -> Policy:
    """[supervisor]: health tick, stall timeout, reconnect debounce, restart backoff and cap."""
    options: dict[str, Any] = {}
    for key, item in _table(("supervisor",), value, SUPERVISOR_KEYS).items():
        path = ("supervisor", key)
        if key == "restart_limit":
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise _Problem(path, f"must be an integer >= 1, got {_show(item)}")
            options[key] = item
        elif key == "backoff_initial_s" and type(item) in (int, float) and item == 0:
            options[key] = 0.0
        else:
            options[key] = _positive(path, item, math.inf)
    policy = Policy(**options)
    if policy.reconnect_restart_after_s < policy.reconnect_crash_after_s:
        raise _Problem(("supervisor", "reconnect_restart_after_s"),
                       "must not be shorter than reconnect_crash_after_s")
    return policy


def _sensors(tables: list[Any]) -> list[SensorSpec]:
    """[[sensors]] tables: name, source (imu:synthetic, serial:PATH?fields=...), settings."""
    specs: list[SensorSpec] = []
    for index, value in enumerate(tables):
        path = ("sensors", index)
        table = _table(path, value, SENSOR_KEYS)
        for key in ("name", "source"):
            if not isinstance(table.get(key), str):
                raise _Problem((*path, key), f"must be a string, got {_show(table.get(key))}")
        settings = table.get("settings", {})
        if not isinstance(settings, dict):
            raise _Problem((*path, "settings"), f"must be a table, got {_show(settings)}")
        spec = SensorSpec(table["name"], table["source"], dict(settings))
        if any(other.name == spec.name for other in specs):
            raise _Problem((*path, "name"), f"sensor name {_show(spec.name)} is used twice")
        try:
            validate_sensor(spec)
        except (SensorError, ValueError) as exc:
            raise _Problem((*path, "source"), str(exc)) from None
        specs.append(spec)
    return specs


def _recording(value: Any, base_dir: Path | None) -> RecordingOptions:
    options: dict[str, Any] = {}
    for key, item in _table(("recording",), value, RECORDING_KEYS).items():
        path = ("recording", key)
        if key == "output":
            options["output_dir"] = _folder(path, item, base_dir)
        elif key == "codec":
            if item not in RIG_CODECS:
                raise _Problem(path, f"must be one of {', '.join(RIG_CODECS)}, got {_show(item)}")
            options["codec"] = item
        elif key in ("multitrack", "auto_resume"):
            if not isinstance(item, bool):
                raise _Problem(path, f"must be true or false, got {_show(item)}")
            options[key] = item
        elif key == "max_queue_size":
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise _Problem(path, f"must be an integer >= 1, got {_show(item)}")
            options[key] = item
        else:
            limit = MAX_CHUNK_LENGTH_S if key == "chunk_length_s" else math.inf
            options[key] = _positive(path, item, limit)
    return RecordingOptions(**options)


def _camera(index: int, value: Any, base_dir: Path | None) -> CameraSpec:
    path = ("cameras", index)
    table = _table(path, value, CAMERA_KEYS)
    camera_id = table.get("id", f"cam{index}")
    if not isinstance(camera_id, str) or not camera_id or "/" in camera_id:
        raise _Problem((*path, "id"),
                       f'must be a non-empty string without "/", got {_show(camera_id)}')
    if "source" not in table:
        raise _Problem((*path, "source"), f"missing; {ACCEPTED}")
    source = _source((*path, "source"), table["source"], base_dir)
    size = {"width": DEFAULT_WIDTH, "height": DEFAULT_HEIGHT, "fps": DEFAULT_FPS}
    size.update((key, table[key]) for key in SIZE_KEYS if key in table)
    try:
        validate_size_fps(size["width"], size["height"], size["fps"])
    except SettingRejected as exc:
        # validate_size_fps says "<key> <requirement>, got <value>"; show the value as TOML.
        key, _, requirement = str(exc).partition(" ")
        head, got, _ = requirement.rpartition(", got ")
        raise _Problem((*path, key), f"{head}, got {_show(size[key])}" if got else requirement
                       ) from None
    settings = _table((*path, "settings"), table.get("settings", {}))
    for key, item in settings.items():
        if not isinstance(item, bool | int | float | str):
            raise _Problem((*path, "settings", key),
                           f"must be a number, true/false or a string, got {_show(item)}")
    return CameraSpec(camera_id, source, size["width"], size["height"], float(size["fps"]),
                      dict(settings))


def _checked_camera(index: int, table: dict[str, Any]) -> CameraSpec:
    """A camera built in memory (not read from a file), checked like one that was."""
    try:
        return _camera(index, table, None)
    except _Problem as problem:
        raise problem.error(IN_MEMORY, {}) from None


def _check_unique(cameras: list[CameraSpec]) -> None:
    first: dict[str, int] = {}
    for index, camera in enumerate(cameras):
        if camera.camera_id in first:
            raise _Problem(("cameras",), f"camera id {_show(camera.camera_id)} is used twice",
                           (("cameras", first[camera.camera_id], "id"), ("cameras", index, "id")))
        first[camera.camera_id] = index


def _table(path: KeyPath, value: Any, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """value as a table with no key outside keys, so that a misspelt key is not ignored."""
    if not isinstance(value, dict):
        raise _Problem(path, f"must be a table, got {_show(value)}")
    unknown = [key for key in value if keys is not None and key not in keys]
    if unknown:
        also = f"; also unknown: {', '.join(map(str, unknown[1:]))}" if unknown[1:] else ""
        raise _Problem((*path, unknown[0]), f"unknown key (expected {', '.join(keys)}{also})")
    return value


def _positive(path: KeyPath, value: Any, limit: float) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0 < value <= limit or not math.isfinite(value):
        wanted = f"a number in (0, {limit:g}]" if math.isfinite(limit) else "a positive number"
        raise _Problem(path, f"must be {wanted}, got {_show(value)}")
    return float(value)


def _folder(path: KeyPath, value: Any, base_dir: Path | None) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _Problem(path, f"must be a folder path, got {_show(value)}")
    folder = Path(value).expanduser()
    return base_dir / folder if base_dir is not None and not folder.is_absolute() else folder


def _source(path: KeyPath, value: Any, base_dir: Path | None) -> str:
    """The source as the camera process will open it: a file path made absolute."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `source = 0`, a device index written as a number
    if not isinstance(value, str):
        raise _Problem(path, f"must be a string, got {_show(value)}")
    try:
        return str(_parse_source_in(value.strip(), base_dir).target)
    except SourceError as exc:
        raise _Problem(path, str(exc)) from None


def _parse_source_in(text: str, base_dir: Path | None) -> SourceKind:
    """parse_source, with a relative file path taken from the rig's folder, not the cwd."""
    relative_path = (
        text.lower() != "synthetic" and not text.isdecimal() and "://" not in text
        and not Path(text).expanduser().is_absolute()
    )
    if base_dir is None or not text or not relative_path:
        return parse_source(text)
    candidate = base_dir / text
    if not candidate.exists():
        parse_source(text)  # the usual message for a typo or a file that is nowhere
        raise SourceError(f"video file not found: {candidate}")  # it is in the cwd only
    return parse_source(str(candidate))


def _syntax_error(origin: str, exc: tomllib.TOMLDecodeError) -> RigError:
    position = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", str(exc), re.DOTALL)
    if position is None:
        return RigError(f"{origin}: invalid TOML: {exc}")
    message, line, column = position.groups()
    return RigError(f"{origin}:{line}: invalid TOML: {message[:1].lower()}{message[1:]} "
                    f"(column {column})")


# --- where keys are in the file, for messages ---------------------------------------

_KEY_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_HEADER = re.compile(rf"\s*(\[\[?)\s*((?:{_KEY_PART}|[ \t.])+?)\s*\]")
_ASSIGNMENT = re.compile(rf"\s*((?:{_KEY_PART}|[ \t.])+?)\s*=")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_lines(text: str) -> dict[KeyPath, int]:
    """The line of every table header and key, by a line scan: good enough for messages.

    Paths index arrays of tables, as in ("cameras", 1, "fps"); keys inside inline tables
    and arrays are not found (messages then give the line of the enclosing key).
    """
    lines: dict[KeyPath, int] = {}
    counts: dict[KeyPath, int] = {}  # array-of-tables path -> index of its latest table
    table: KeyPath = ()
    in_string = False
    for number, line in enumerate(text.split("\n"), start=1):
        inside = in_string
        if (line.count('"""') + line.count("'''")) % 2:
            in_string = not in_string
        if inside:
            continue
        header = _HEADER.match(line)
        if header:
            table = _table_path(_key_parts(header.group(2)), header.group(1) == "[[", counts)
            lines.setdefault(table, number)
        elif assignment := _ASSIGNMENT.match(line):
            lines.setdefault(table + _key_parts(assignment.group(1)), number)
    return lines


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, dotted)
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in parts)


def _table_path(parts: tuple[str, ...], array: bool, counts: dict[KeyPath, int]) -> KeyPath:
    path: list[str | int] = []
    for position, part in enumerate(parts):
        path.append(part)
        key = tuple(path)
        if array and position == len(parts) - 1:
            counts[key] = counts.get(key, -1) + 1
        if key in counts:
            path.append(counts[key])
    return tuple(path)


def _line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of path, else of its nearest enclosing key or table."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _key_name(path: KeyPath) -> str:
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            shown = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            name += f".{shown}" if name else shown
    return name


def _show(value: Any) -> str:
    """A value as it is written in TOML, for messages."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# --- saving ----------------------------------------------------------------------------


def save_rig(rig: Rig, path: Path) -> None:
    """Write rig as a TOML file, atomically: a crash leaves the old file or the new one.

    The real sources are written (with any password: this is the user's file); the file
    keeps its permissions. A rig that would not load back is refused with RigError.
    """
    path = Path(path)
    folder = path.parent.absolute()
    table = _rig_table(rig, folder)
    rig_from_dict(table, str(path), base_dir=folder)
    temporary = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "x", encoding="utf-8") as file:
            if path.exists():
                os.chmod(file.fileno(), stat.S_IMODE(path.stat().st_mode))
            file.write(_toml_text(table))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(folder)


def _rig_table(rig: Rig, folder: Path) -> dict[str, Any]:
    options = rig.recording
    recording = {"output": _home_path(options.output_dir), **asdict(options)}
    del recording["output_dir"]
    cameras = []
    for spec in rig.cameras:
        camera = _camera_table(spec)
        camera["source"] = _path_in(folder, spec.source)
        cameras.append(camera)
    sensors = [
        {"name": spec.name, "source": spec.source}
        | ({"settings": dict(spec.settings)} if spec.settings else {})
        for spec in rig.sensors
    ]
    supervisor = {key: value for key, value in asdict(rig.supervisor).items() if value is not None}
    device = asdict(rig.device) | {"network_targets": list(rig.device.network_targets)}
    return {"name": rig.name, "recording": recording, "supervisor": supervisor,
            "device": device, "cameras": cameras, "sensors": sensors}


def _camera_table(spec: CameraSpec) -> dict[str, Any]:
    table = {"id": spec.camera_id, "source": spec.source, "width": spec.width,
             "height": spec.height, "fps": spec.fps}
    return table | {"settings": dict(spec.settings)} if spec.settings else table


def _toml_text(table: dict[str, Any]) -> str:
    """tomli_w's text, but cameras as [[cameras]] tables (tomli_w inlines short ones)."""
    arrays = ("cameras", "sensors")
    chunks = [tomli_w.dumps({key: value for key, value in table.items() if key not in arrays})]
    for array in arrays:
        for entry in table[array]:
            scalars = {key: value for key, value in entry.items() if key != "settings"}
            chunks.append(f"[[{array}]]\n" + tomli_w.dumps(scalars))
            if entry.get("settings"):
                chunks.append(tomli_w.dumps({array: {"settings": entry["settings"]}}))
    return "\n".join(chunks)


def _home_path(path: Path) -> str:
    """A folder under the home folder as "~/...", so the file works for another user too."""
    try:
        inside = path.relative_to(Path.home())
    except ValueError:
        return str(path)
    return "~" if inside == Path() else f"~/{inside.as_posix()}"


def _path_in(folder: Path, source: str) -> str:
    """A video file beside the rig file as a relative path, so the folder can move."""
    path = Path(source)
    if path.is_absolute() and path.is_relative_to(folder) and path.is_file():
        return path.relative_to(folder).as_posix()
    return source


# --- other views of a rig ---------------------------------------------------------------


def rig_summary(rig: Rig) -> dict[str, Any]:
    """The rig as JSON-ready data for status and events, with camera passwords masked."""
    recording = asdict(rig.recording) | {"output_dir": str(rig.recording.output_dir)}
    cameras = [
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
    sensors = [{"name": s.name, "source": mask_credentials(s.source)} for s in rig.sensors]
    return {"name": rig.name, "recording": recording, "supervisor": asdict(rig.supervisor),
            "device": asdict(rig.device), "cameras": cameras, "sensors": sensors}


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
                     "height": height, "fps": fps} for index in range(cameras)],
    })
