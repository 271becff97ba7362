"""Frame sources chosen by a URI-like string, and the checks shared by all of them.

`parse_source` runs in the parent before any camera process is spawned, so it only
inspects the string (and whether a file exists); it never opens a device. The source
classes are imported lazily by `create_source`, so parsing never pays for importing cv2.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.sources.base import PropertySpec, SettingRejected, Source, SourceError
from engine.specs import MAX_FPS, MAX_HEIGHT, MAX_WIDTH, MIN_SIDE, NETWORK_SCHEMES

__all__ = [
    "PASSWORD_MASK",
    "Kind",
    "PropertySpec",
    "SettingRejected",
    "Source",
    "SourceError",
    "SourceKind",
    "coerce_setting",
    "create_source",
    "mask_credentials",
    "parse_source",
    "retired_settings",
    "validate_changes",
    "validate_size_fps",
]

ACCEPTED = (
    "expected 'synthetic', a device index, /dev/videoN or /dev/v4l/by-id/... (by-path), "
    "a video file path, pylon:SERIAL (a Basler camera), genicam:ID (a GenICam camera), "
    "or a stream URL ("
    + ", ".join(f"{scheme}://" for scheme in NETWORK_SCHEMES) + ")"
)

PASSWORD_MASK = "***"  # what stands for a password wherever a URL is shown or kept

# A camera's node, or udev's stable name for it: by-id names the camera (its USB vendor,
# product and serial), by-path the port it is plugged into; /dev/videoN can change when
# cameras are plugged in another order. Not required to exist: a rig names its cameras
# before they are plugged in.
_DEVICE_PATH = re.compile(r"/dev/video\d+|/dev/v4l/by-(?:id|path)/[^/\s]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_FILE_SUFFIX = re.compile(r"\.[A-Za-z]\w*")  # ".mp4" marks a path; "1.5" is no file name
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class Kind(StrEnum):
    SYNTHETIC = "synthetic"
    DEVICE = "device"
    FILE = "file"
    NETWORK = "network"
    PYLON = "pylon"
    GENICAM = "genicam"


@dataclass(frozen=True)
class SourceKind:
    """What a source string denotes. `target` is what OpenCV is given to open:
    a device index (int) or path, a file path, or a URL ("synthetic" for the pattern); a
    machine-vision camera's source as written (pylon:ID, genicam:ID)."""

    kind: Kind
    target: int | str

    @property
    def display(self) -> str:
        """The source as it may be logged or shown: credentials masked."""
        return mask_credentials(str(self.target))

    def __str__(self) -> str:
        return self.display


# Settings a kind of source no longer has, each with why: a rig file (or a state database)
# that still names one loads with a note instead of failing, and saving drops it.
RETIRED_SETTINGS: dict[Kind, dict[str, str]] = {
    Kind.NETWORK: {
        "reconnect_timeout_s": "a camera whose stream drops leaves the sync gate at once and "
                               "reconnects outside it until its stream is back",
    },
}


def retired_settings(uri: str) -> dict[str, str]:
    """The retired settings of the kind of source `uri` names, each with why."""
    return RETIRED_SETTINGS.get(parse_source(uri).kind, {})


def parse_source(uri: str) -> SourceKind:
    """Classify a source string without opening it; raise SourceError if it is not usable."""
    text = uri.strip() if isinstance(uri, str) else ""
    if text.lower() == "synthetic":
        return SourceKind(Kind.SYNTHETIC, "synthetic")
    if text.isdecimal() and text.isascii():
        return SourceKind(Kind.DEVICE, int(text))
    if _DEVICE_PATH.fullmatch(text):
        return SourceKind(Kind.DEVICE, text)
    for kind, what, lister in ((Kind.PYLON, "a Basler camera", "pylon"),
                               (Kind.GENICAM, "a GenICam camera", "Aravis")):
        if text.lower().startswith(f"{kind.value}:"):
            if not text[len(kind.value) + 1:].strip():
                raise SourceError(f"{what} is {kind.value}:ID or {kind.value}:N (the N-th "
                                  f"camera {lister} lists); this one names none")
            return SourceKind(kind, text)
    scheme = _SCHEME.match(text)
    if scheme:
        if scheme.group(1).lower() in NETWORK_SCHEMES and len(text) > scheme.end():
            _check_host(text)
            return SourceKind(Kind.NETWORK, text)
        raise SourceError(f"unknown camera source {mask_credentials(text)!r}: {ACCEPTED}")
    if text:
        path = Path(text).expanduser()
        if path.is_file():
            return SourceKind(Kind.FILE, str(path.absolute()))
        if path.is_dir():
            raise SourceError(f"not a video file: {text} is a directory")
        if "/" in text or "\\" in text or _FILE_SUFFIX.fullmatch(path.suffix):
            raise SourceError(f"video file not found: {text}")
    raise SourceError(f"unknown camera source {uri!r}: {ACCEPTED}")


def create_source(
    uri: str,
    camera_index: int,
    width: int,
    height: int,
    fps: float,
    settings: dict[str, Any] | None = None,
) -> Source:
    """Build the (unopened) source for `uri`; open() is called later in the camera process.

    width/height/fps are the requested values: a file reports its own size (and uses
    fps only when it has none); devices and network cameras report what they got.
    Unknown or invalid `settings` keys raise SettingRejected here, before any spawn.
    """
    parsed = parse_source(uri)
    validate_size_fps(width, height, fps)
    if parsed.kind is Kind.SYNTHETIC:
        from engine.sources.synthetic import SyntheticSource

        return SyntheticSource(camera_index, width, height, fps, settings)
    if parsed.kind is Kind.NETWORK:
        from engine.sources.network import NetworkSource

        return NetworkSource(parsed, width, height, fps, settings)
    if parsed.kind is Kind.PYLON:
        from engine.sources.pylon_source import PylonSource

        return PylonSource(parsed, width, height, fps, settings)
    if parsed.kind is Kind.GENICAM:
        from engine.sources.aravis_source import AravisSource

        return AravisSource(parsed, width, height, fps, settings)
    from engine.sources.opencv_source import open_cv_source

    return open_cv_source(parsed, width, height, fps, settings)


def _check_host(url: str) -> None:
    """A network camera's URL must name a host (and a valid port, if any)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError:
        raise SourceError(f"network camera URL {mask_credentials(url)!r} has an invalid "
                          "port") from None
    if not parts.hostname:
        raise SourceError(f"network camera URL {mask_credentials(url)!r} names no host")


def mask_credentials(uri: str) -> str:
    """Hide the password of a URL: rtsp://user:pass@host/x -> rtsp://user:***@host/x."""
    scheme = _SCHEME.match(uri)
    if not scheme:
        return uri
    rest = uri[scheme.end():]
    authority_end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            authority_end = min(authority_end, found)
    userinfo, at, _host = rest[:authority_end].rpartition("@")
    if not at or ":" not in userinfo:
        return uri
    user = userinfo.split(":", 1)[0]
    return f"{uri[:scheme.end()]}{user}:{PASSWORD_MASK}@{rest[len(userinfo) + 1:]}"


def validate_size_fps(width: int, height: int, fps: float) -> None:
    """Reject a frame size or rate the recording path cannot take (yuv420p needs even sizes)."""
    for name, value, limit in (("width", width, MAX_WIDTH), ("height", height, MAX_HEIGHT)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingRejected(f"{name} must be an integer, got {value!r}")
        if not MIN_SIDE <= value <= limit or value % 2:
            raise SettingRejected(
                f"{name} must be an even number in {MIN_SIDE}..{limit}, got {value}")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= MAX_FPS:
        raise SettingRejected(f"fps must be a number in (0, {MAX_FPS:g}], got {fps!r}")


def validate_changes(specs: list[PropertySpec], changes: dict[str, Any]) -> dict[str, Any]:
    """Coerce every change against its spec; raise SettingRejected before anything is applied.

    A read-only property given its current value is accepted (and dropped), so a caller
    may send back a full settings dict it received.
    """
    by_name = {spec.name: spec for spec in specs}
    accepted = {}
    for key, value in changes.items():
        spec = by_name.get(key)
        if spec is None:
            raise SettingRejected(f"unknown setting {key!r}; accepted: {', '.join(by_name)}")
        if spec.read_only and value == spec.value:
            continue
        accepted[key] = coerce_setting(spec, value)
    return accepted


def coerce_setting(spec: PropertySpec, value: Any) -> Any:
    """Convert `value` to the type of `spec` and check its limits, or raise SettingRejected.

    Strings are accepted too ("30", "true"), since settings also come from the CLI.
    """
    name = spec.name
    if spec.read_only:
        raise SettingRejected(f"{name} is read-only")
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise SettingRejected(f"{name} must be true or false, got {value!r}")
    if spec.kind == "choice":
        if value in spec.choices:
            return value
        raise SettingRejected(f"{name} must be one of {', '.join(spec.choices)}, got {value!r}")
    number = _number(name, value, spec.kind)
    if spec.minimum is not None and number < spec.minimum:
        raise SettingRejected(f"{name} must be >= {spec.minimum:g}, got {number:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise SettingRejected(f"{name} must be <= {spec.maximum:g}, got {number:g}")
    if spec.kind == "int" and spec.step and (number - (spec.minimum or 0)) % spec.step:
        raise SettingRejected(f"{name} must be a multiple of {spec.step:g}, got {number}")
    return number


def _number(name: str, value: Any, kind: str) -> int | float:
    if isinstance(value, bool):
        raise SettingRejected(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingRejected(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SettingRejected(f"{name} must be a finite number, got {value!r}")
    if kind == "int":
        if not number.is_integer():
            raise SettingRejected(f"{name} must be an integer, got {value!r}")
        return int(number)
    return number
