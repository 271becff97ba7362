"""What the nodes of a multi-machine rig and its coordinator say over the broker, declared once.

Every node is an engine (`recorder-engine serve --node NAME --broker URL`); the broker
(NATS) carries control, status and events only, never frames. Subjects, per rig id and
node name (`subject`):

- `recorder.<rig>.node.<node>.status`: the node's NodeStatus, every STATUS_INTERVAL_S;
- `recorder.<rig>.node.<node>.clock`: a ClockProbe request, answered with a ClockReading
  (the node's clock), from which the coordinator measures the node's clock offset;
- `recorder.<rig>.node.<node>.command`: a control-socket request, the socket's JSON
  ({"id", "cmd", "args"}: engine/wire/commands.py), answered with the socket's answer;
- `recorder.<rig>.node.<node>.events`: the engine's events as the socket sends them;
- `recorder.<rig>.node.<node>.preview`: PreviewFrame, each camera's newest picture, small
  and compressed, PREVIEW_HZ times a second while a coordinator watches: it publishes
  WatchPreview on `recorder.<rig>.watch` (rig_subject) at least every WATCH_LEASE_S / 3.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.wire.registry import Message, Registry, WireError

NODE_MESSAGES: Registry[NodeMessage] = Registry("node message", "msg")
SUBJECT_ROOT = "recorder"
CHANNELS = ("status", "clock", "command", "events", "preview")
RIG_CHANNELS = ("watch",)
STATUS_INTERVAL_S = 1.0
PREVIEW_HZ = 5.0
PREVIEW_WIDTH = 320  # pixels across a preview picture (never more than the camera's)
WATCH_LEASE_S = 15.0  # a node stops sending previews this long after the last WatchPreview
# A node or rig name is one subject token: letters, digits, '-' and '_'.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, kw_only=True)
class NodeMessage(Message):
    """Base of every message on the broker."""


@NODE_MESSAGES.register("node_status")
@dataclass(frozen=True, kw_only=True)
class NodeStatus(NodeMessage):
    """A node's announcement: who it is, its cameras and their states, and what it is
    doing. `clock_ns` is the node's clock when it was sent (the clock its capture times
    are on)."""

    node: str
    version: str
    pid: int
    rig: str
    state: str
    cameras: list[dict[str, Any]] = field(default_factory=list)
    recording: dict[str, Any] | None = None
    clock_ns: int = 0
    health: dict[str, Any] = field(default_factory=dict)  # the device's: see health_of


@NODE_MESSAGES.register("clock_probe")
@dataclass(frozen=True, kw_only=True)
class ClockProbe(NodeMessage):
    """The coordinator asks a node for its clock; `sent_ns` is the coordinator's clock
    when it asked, handed back so a reply cannot be matched to the wrong probe."""

    sent_ns: int


@NODE_MESSAGES.register("clock_reading")
@dataclass(frozen=True, kw_only=True)
class ClockReading(NodeMessage):
    """A node's answer to a ClockProbe: its clock when it answered."""

    sent_ns: int
    node_ns: int


@NODE_MESSAGES.register("watch_preview")
@dataclass(frozen=True, kw_only=True)
class WatchPreview(NodeMessage):
    """A coordinator shows the rig's cameras: every node sends previews for a while."""

    watcher: str


@NODE_MESSAGES.register("preview_frame")
@dataclass(frozen=True, kw_only=True)
class PreviewFrame(NodeMessage):
    """One camera's newest picture, JPEG in base64; `frame` its frame number, so a
    watcher can tell a live picture from one that stopped."""

    node: str
    camera: str
    frame: int
    jpeg: str


def health_of(device: dict[str, Any]) -> dict[str, Any]:
    """What a coordinator shows of a node's device status (engine/system/device_monitor.py):
    CPU, memory, the recordings disk, battery, and what stops or threatens recording."""
    storage = device.get("storage") or {}
    battery = device.get("battery") or {}
    return {"cpu_percent": (device.get("cpu") or {}).get("usage_percent"),
            "memory_percent": (device.get("memory") or {}).get("used_percent"),
            "disk_free_bytes": storage.get("free_bytes"), "disk_level": storage.get("level"),
            "battery_percent": battery.get("percent"),
            "healthy": device.get("device_healthy", True), "error": device.get("device_error"),
            "warnings": list(device.get("warnings") or [])}


def check_name(kind: str, name: str) -> str:
    """name, if it can be a subject token; else a ValueError that says what it may be."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} may hold only letters, digits, '-' and '_' "
                         "(at most 64)")
    return name


def subject(rig: str, node: str, channel: str) -> str:
    """The broker subject of one node's channel (CHANNELS); node "*" matches every node."""
    if channel not in CHANNELS:
        raise ValueError(f"no channel {channel!r} (channels: {', '.join(CHANNELS)})")
    return f"{SUBJECT_ROOT}.{rig}.node.{node}.{channel}"


def rig_subject(rig: str, channel: str) -> str:
    """The broker subject of a channel every node of the rig listens to (RIG_CHANNELS)."""
    if channel not in RIG_CHANNELS:
        raise ValueError(f"no rig channel {channel!r} (channels: {', '.join(RIG_CHANNELS)})")
    return f"{SUBJECT_ROOT}.{rig}.{channel}"


def node_of(subject_name: str) -> str:
    """The node a subject belongs to."""
    return subject_name.split(".")[3]


def encode(message: NodeMessage) -> bytes:
    return json.dumps(NODE_MESSAGES.to_wire(message)).encode()


def decode(data: bytes) -> NodeMessage:
    """The message data holds; WireError when it is not one NODE_MESSAGES declares."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"a node message that is not JSON: {exc}") from None
    return NODE_MESSAGES.from_wire(value)


def pack_ns(values: np.ndarray) -> str:
    """Nanosecond times as text small enough for one broker message: an hour of 30 fps
    capture times (108,000) packs to some 200 kB (deltas of int64, zlib, base64)."""
    deltas = np.diff(np.asarray(values, np.int64), prepend=np.int64(0))
    return base64.b64encode(zlib.compress(deltas.astype("<i8").tobytes(), 6)).decode()


def unpack_ns(text: str) -> np.ndarray:
    """The times pack_ns packed; WireError when text is not such a pack."""
    try:
        raw = zlib.decompress(base64.b64decode(text, validate=True))
    except (ValueError, zlib.error) as exc:
        raise WireError(f"packed times that are not: {exc}") from None
    if len(raw) % 8:
        raise WireError("packed times of a length that is not a whole number of int64")
    return np.cumsum(np.frombuffer(raw, "<i8"), dtype=np.int64)
