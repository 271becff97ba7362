"""The rig file's schema: its option sections, declared once, and how tables are checked.

`[recording]` and `[device]` are declared here, `[supervisor]` is the supervisor's
`Policy`; each field's `option()` metadata gives its key, default, limits and help, and
its type says how a value is checked (see `check_option`). Cameras and sensors are not
options but things with their own validators (the sources' size and fps limits, the
sensor factory), so their tables are read by `read_camera` and `read_sensor`.
A section may list `retired` keys, and a kind of source its retired settings
(engine/sources RETIRED_SETTINGS): an old rig file that still has one loads with a
RigWarning naming it instead of failing.
"""

from __future__ import annotations

import math
import operator
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from engine.export import FORMATS as EXPORT_FORMATS
from engine.option import Declared, Option, declared, option
from engine.recording.encoder import DEFAULT_PRESET, ENCODER_THREADS, X264_PRESETS
from engine.rig.problem import KeyPath, Problem, key_name, show
from engine.sensors.base import SensorError
from engine.sensors.factory import validate_sensor
from engine.sources import (
    ACCEPTED,
    SettingRejected,
    SourceError,
    SourceKind,
    create_source,
    parse_source,
    retired_settings,
    validate_size_fps,
)
from engine.specs import (
    CODEC_CHOICES,
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    SDK_PREFIXES,
    TRIGGERS,
    CameraSpec,
    SensorSpec,
)
from engine.wire.paths import default_output_dir

DEFAULT_START_TIMEOUT_S = 30.0  # as long as the capture group waits unless told otherwise


@dataclass(frozen=True)
class RecordingOptions:
    """Where and how a rig records, how long a camera may take to get ready, how far
    apart in time its cameras may capture a frame set, and what each take is exported to."""

    output_dir: Path = field(default_factory=default_output_dir, metadata=option(
        'one folder per recording is made here (default: "recordings" in Videos)',
        key="output"))
    codec: str = field(default="h264", metadata=option(
        "h264 (small files), mjpeg, ffv1 (lossless, large), or H.264 from a hardware "
        "encoder: nvenc (NVIDIA), qsv (Intel Quick Sync), auto (the first the machine has, "
        "else x264); one the machine lacks falls back to x264", choices=CODEC_CHOICES))
    device_ready_timeout_s: float = field(default=DEFAULT_START_TIMEOUT_S, metadata=option(
        "how long a camera (and its writer) may take to be ready, in seconds", above=0))
    multitrack: bool = field(default=False, metadata=option(
        "after each take, also copy every camera into one MKV, a track each (needs the "
        "take's size again in free space, and time to copy it)"))
    auto_resume: bool = field(default=False, metadata=option(
        "after a camera failure ends a take, start the next one"))
    trigger: str = field(default="software", metadata=option(
        "who starts each exposure of the machine-vision cameras (pylon:, genicam:) that do "
        "not set their own trigger: software (the engine, at every frame set), hardware "
        "(an input line: a trigger box), or free (the camera's own clock)", choices=TRIGGERS))
    sync_tolerance_ms: float | None = field(default=None, metadata=option(
        "verify fails a recording whose cameras' capture spread exceeds this at p99, in ms "
        "(default: one frame period of the slowest camera)", above=0))
    h264_preset: str = field(default=DEFAULT_PRESET, metadata=option(
        "x264's preset: a slower one makes smaller files of the same quality for more CPU "
        "per frame (hardware encoders ignore it)", choices=X264_PRESETS))
    encoder_threads: int = field(default=ENCODER_THREADS, metadata=option(
        "threads of each camera's software encoder (x264, mjpeg, ffv1)", minimum=1,
        maximum=16))
    export_after: tuple[str, ...] = field(default=(), metadata=option(
        "after each take, export it to these formats, in the background, into the take's "
        "exports/<format>/ folder", pattern="|".join(EXPORT_FORMATS),
        pattern_name=f"export formats ({', '.join(EXPORT_FORMATS)})"))

    retired: ClassVar[dict[str, str]] = {
        "health_check_interval_s": "the health check's interval is [supervisor] interval_s",
        "session_join_timeout_s": "nothing read it",
        "max_queue_size": "nothing read it",
        "chunk_length_s": "each camera is now written straight into its final file",
    }


@dataclass(frozen=True)
class DeviceOptions:
    """The workstation itself: its name, the low-disk limits, the network probe targets
    ("host:port") and an optional GPIO record button with its network-setup hook."""

    device_id: str = field(default="", metadata=option(
        "this workstation's name (default: the host name)"))
    disk_warn_below_gb: float = field(default=5.0, metadata=option(
        "warn under this much free space", above=0))
    disk_stop_below_gb: float = field(default=1.0, metadata=option(
        "refuse to record, or stop, under this much free space", above=0,
        at_most="disk_warn_below_gb"))
    network_targets: tuple[str, ...] = field(default=("8.8.8.8:443", "1.1.1.1:443"),
                                             metadata=option(
        "TCP probes that tell online from network-only", pattern=r"[^:\s]+:\d{1,5}",
        pattern_name='"host:port"'))
    button_chip: str = field(default="", metadata=option(
        'a record button\'s GPIO chip, e.g. "/dev/gpiochip0"; empty: no button'))
    button_line: int = field(default=17, metadata=option("the button's GPIO line", minimum=0))
    network_setup_command: str = field(default="", metadata=option(
        "run on a 5 s press of the button"))


Section = TypeVar("Section")


# --- option sections ---------------------------------------------------------------------


def read_section(section: type[Section], path: KeyPath, value: Any, base_dir: Path | None,
                 notes: list[Problem]) -> Section:
    """A section dataclass from its table; retired keys are noted, unknown ones refused."""
    options = declared(section)
    retired: dict[str, str] = getattr(section, "retired", {})
    table = checked_table(path, value, [o.key for o in options], retired)
    values = {o.name: check_option((*path, o.key), o, table[o.key], base_dir)
              for o in options if o.key in table}
    notes.extend(Problem((*path, key), f"no longer used, ignored ({retired[key]})")
                 for key in table if key in retired)
    result = section(**values)
    _check_order(path, result, options)
    return result


def _check_order(path: KeyPath, section: Any, options: list[Declared]) -> None:
    """Limits between two options, e.g. the disk stop level not above the warn level."""
    for o in options:
        mine = getattr(section, o.name)
        for other, word, wrong in ((o.option.at_least, "below", operator.lt),
                                   (o.option.at_most, "above", operator.gt)):
            theirs = getattr(section, other) if other else None
            if mine is not None and theirs is not None and wrong(mine, theirs):
                raise Problem((*path, o.key), f"must not be {word} {other}")


def check_option(path: KeyPath, declared_option: Declared, value: Any,
                 base_dir: Path | None) -> Any:
    """value as the option's type, within its limits; Problem says what was wanted."""
    kind, limits = _base(declared_option.kind), declared_option.option
    if kind is Path:
        return _folder(path, value, base_dir)
    if kind is bool:
        if not isinstance(value, bool):
            raise Problem(path, f"must be true or false, got {show(value)}")
        return value
    if kind is int:
        low, high = limits.minimum, limits.maximum
        if isinstance(value, bool) or not isinstance(value, int) or not _within(value, limits):
            wanted = ("an integer" if low is None else f"an integer >= {low:g}" if high is None
                      else f"an integer in [{low:g}, {high:g}]")
            raise Problem(path, f"must be {wanted}, got {show(value)}")
        return value
    if kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not _within(value, limits):
            raise Problem(path, f"must be {_number_wanted(limits)}, got {show(value)}")
        return float(value)
    if kind is str:
        if limits.choices and value not in limits.choices:
            raise Problem(path, f"must be one of {', '.join(limits.choices)}, got {show(value)}")
        if not isinstance(value, str):
            raise Problem(path, f"must be a string, got {show(value)}")
        return value
    if typing.get_origin(kind) is tuple:  # tuple[str, ...]: a list of strings
        pattern = limits.pattern or ".*"
        if not isinstance(value, list) or not all(
                isinstance(item, str) and re.fullmatch(pattern, item) for item in value):
            raise Problem(path, f"must be a list of {limits.pattern_name or 'strings'}, "
                                f"got {show(value)}")
        return tuple(value)
    raise TypeError(f"{key_name(path)}: no check for options of type {kind}")


def file_value(value: Any) -> Any:
    """value as a rig file writes it (None: not written)."""
    if isinstance(value, Path):
        return home_path(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def summary_value(value: Any) -> Any:
    """value as JSON-ready data."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _base(kind: Any) -> Any:
    """float for `float | None`: an optional option is simply left out of the file."""
    if isinstance(kind, types.UnionType):
        present = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return present[0] if len(present) == 1 else kind
    return kind


def _within(value: float, limits: Option) -> bool:
    return ((limits.above is None or value > limits.above)
            and (limits.minimum is None or value >= limits.minimum)
            and (limits.maximum is None or value <= limits.maximum))


def _number_wanted(limits: Option) -> str:
    """How a message names a number's limits: "a positive number", "a number in (0, 3600]"."""
    above, minimum, maximum = limits.above, limits.minimum, limits.maximum
    if above is not None:
        if maximum is not None:
            return f"a number in ({above:g}, {maximum:g}]"
        return "a positive number" if above == 0 else f"a number above {above:g}"
    if minimum is not None:
        return (f"a number in [{minimum:g}, {maximum:g}]" if maximum is not None
                else f"a number >= {minimum:g}")
    return f"a number <= {maximum:g}" if maximum is not None else "a number"


def checked_table(path: KeyPath, value: Any, keys: list[str] | None = None,
                  retired: dict[str, str] | None = None) -> dict[str, Any]:
    """value as a table with no key outside keys, so that a misspelt key is not ignored."""
    if not isinstance(value, dict):
        raise Problem(path, f"must be a table, got {show(value)}")
    if keys is None:
        return value
    unknown = [key for key in value if key not in keys and key not in (retired or {})]
    if unknown:
        also = f"; also unknown: {', '.join(map(str, unknown[1:]))}" if unknown[1:] else ""
        raise Problem((*path, unknown[0]), f"unknown key (expected {', '.join(keys)}{also})")
    return value


def _folder(path: KeyPath, value: Any, base_dir: Path | None) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise Problem(path, f"must be a folder path, got {show(value)}")
    folder = Path(value).expanduser()
    return base_dir / folder if base_dir is not None and not folder.is_absolute() else folder


def home_path(path: Path) -> str:
    """A folder under the home folder as "~/...", so the file works for another user too."""
    try:
        inside = path.relative_to(Path.home())
    except ValueError:
        return str(path)
    return "~" if inside == Path() else f"~/{inside.as_posix()}"


# --- cameras and sensors -----------------------------------------------------------------

# A camera table's keys are CameraSpec's fields; only the id is spelt differently.
CAMERA_KEYS = tuple("id" if f.name == "camera_id" else f.name for f in fields(CameraSpec))
SIZE_KEYS = ("width", "height", "fps")
SENSOR_KEYS = tuple(f.name for f in fields(SensorSpec))


def read_camera(index: int, value: Any, base_dir: Path | None,
                notes: list[Problem]) -> CameraSpec:
    """A [[cameras]] table: id (default cam<index>), source, size, rate and settings;
    retired settings are noted and left out."""
    path = ("cameras", index)
    table = checked_table(path, value, list(CAMERA_KEYS))
    camera_id = table.get("id", f"cam{index}")
    if not isinstance(camera_id, str) or not camera_id or "/" in camera_id:
        raise Problem((*path, "id"),
                      f'must be a non-empty string without "/", got {show(camera_id)}')
    if "source" not in table:
        raise Problem((*path, "source"), f"missing; {ACCEPTED}")
    source = read_source((*path, "source"), table["source"], base_dir)
    size: dict[str, Any] = {"width": DEFAULT_WIDTH, "height": DEFAULT_HEIGHT, "fps": DEFAULT_FPS}
    size.update((key, table[key]) for key in SIZE_KEYS if key in table)
    try:
        validate_size_fps(size["width"], size["height"], size["fps"])
    except SettingRejected as exc:
        # validate_size_fps says "<key> <requirement>, got <value>"; show the value as TOML.
        key, _, requirement = str(exc).partition(" ")
        head, got, _ = requirement.rpartition(", got ")
        raise Problem((*path, key), f"{head}, got {show(size[key])}" if got else requirement
                      ) from None
    settings = dict(checked_table((*path, "settings"), table.get("settings", {})))
    retired = retired_settings(source)
    for key in [key for key in settings if key in retired]:
        notes.append(Problem((*path, "settings", key), f"no longer used, ignored ({retired[key]})"))
        del settings[key]
    for key, item in settings.items():
        if not isinstance(item, bool | int | float | str):
            raise Problem((*path, "settings", key),
                          f"must be a number, true/false or a string, got {show(item)}")
    _check_settings(path, source, size, dict(settings))
    return CameraSpec(camera_id, source, size["width"], size["height"], float(size["fps"]),
                      settings)


def _check_settings(path: KeyPath, source: str, size: dict[str, Any],
                    settings: dict[str, Any]) -> None:
    """A camera's settings are checked by its source's own properties (without opening
    it), so a wrong one is named here (file, line, camera, key) rather than as a restart
    loop once the camera process starts."""
    try:
        create_source(source, 0, size["width"], size["height"], float(size["fps"]), settings)
    except SettingRejected as exc:
        # The source's message starts with the setting it rejects, when it is one.
        key, _, requirement = str(exc).partition(" ")
        if key in settings:
            raise Problem((*path, "settings", key), requirement) from None
        raise Problem((*path, "settings"), str(exc)) from None


def camera_table(spec: CameraSpec) -> dict[str, Any]:
    """A camera as its table; settings only when it has some."""
    table = {"id": spec.camera_id, "source": spec.source, "width": spec.width,
             "height": spec.height, "fps": spec.fps}
    return table | {"settings": dict(spec.settings)} if spec.settings else table


def unique_cameras(cameras: list[CameraSpec]) -> None:
    """Refuse a camera id used twice, naming both places."""
    first: dict[str, int] = {}
    for index, camera in enumerate(cameras):
        if camera.camera_id in first:
            raise Problem(("cameras",), f"camera id {show(camera.camera_id)} is used twice",
                          (("cameras", first[camera.camera_id], "id"), ("cameras", index, "id")))
        first[camera.camera_id] = index


def read_sensor(index: int, value: Any, earlier: list[SensorSpec]) -> SensorSpec:
    """A [[sensors]] table: name, source (imu:synthetic, serial:PATH?fields=...), settings."""
    path = ("sensors", index)
    table = checked_table(path, value, list(SENSOR_KEYS))
    for key in ("name", "source"):
        if not isinstance(table.get(key), str):
            raise Problem((*path, key), f"must be a string, got {show(table.get(key))}")
    settings = checked_table((*path, "settings"), table.get("settings", {}))
    spec = SensorSpec(table["name"], table["source"], dict(settings))
    if any(other.name == spec.name for other in earlier):
        raise Problem((*path, "name"), f"sensor name {show(spec.name)} is used twice")
    try:
        validate_sensor(spec)
    except (SensorError, ValueError) as exc:
        raise Problem((*path, "source"), str(exc)) from None
    return spec


def sensor_table(spec: SensorSpec) -> dict[str, Any]:
    table: dict[str, Any] = {"name": spec.name, "source": spec.source}
    return table | {"settings": dict(spec.settings)} if spec.settings else table


def read_source(path: KeyPath, value: Any, base_dir: Path | None) -> str:
    """The source as the camera process will open it: a file path made absolute."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `source = 0`, a device index written as a number
    if not isinstance(value, str):
        raise Problem(path, f"must be a string, got {show(value)}")
    try:
        return str(_parse_source_in(value.strip(), base_dir).target)
    except SourceError as exc:
        raise Problem(path, str(exc)) from None


def source_in(folder: Path, source: str) -> str:
    """A video file beside the rig file as a relative path, so the folder can move."""
    path = Path(source)
    if path.is_absolute() and path.is_relative_to(folder) and path.is_file():
        return path.relative_to(folder).as_posix()
    return source


def _parse_source_in(text: str, base_dir: Path | None) -> SourceKind:
    """parse_source, with a relative file path taken from the rig's folder, not the cwd."""
    relative_path = (
        text.lower() != "synthetic" and not text.isdecimal() and "://" not in text
        and not text.lower().startswith(SDK_PREFIXES)
        and not Path(text).expanduser().is_absolute()
    )
    if base_dir is None or not text or not relative_path:
        return parse_source(text)
    candidate = base_dir / text
    if not candidate.exists():
        parse_source(text)  # the usual message for a typo or a file that is nowhere
        raise SourceError(f"video file not found: {candidate}")  # it is in the cwd only
    return parse_source(str(candidate))
