"""Every event the engine publishes, declared once: name, fields and their types.

Events flow from the capture group, the supervisor and the service to every attached
client as {"event": name, "time": epoch_s, **fields}. The GUI's EngineLink has one
signal per event type; `EVENTS.from_wire` refuses anything not declared here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from engine.wire.registry import Message, Registry

EVENTS: Registry[Event] = Registry("event", "event")


@dataclass(frozen=True, kw_only=True)
class Event(Message):
    time: float = field(default_factory=time.time)


# --- the capture group ---------------------------------------------------------------------

@EVENTS.register("group_started")
@dataclass(frozen=True, kw_only=True)
class GroupStarted(Event):
    cameras: list[str]
    failed: dict[str, str]


@EVENTS.register("camera_failed")
@dataclass(frozen=True, kw_only=True)
class CameraFailed(Event):
    camera: str
    message: str


@EVENTS.register("camera_lost")
@dataclass(frozen=True, kw_only=True)
class CameraLost(Event):
    """The camera's stream dropped; its process reconnects outside the gate."""

    camera: str
    message: str


@EVENTS.register("camera_reconnected")
@dataclass(frozen=True, kw_only=True)
class CameraReconnected(Event):
    camera: str


@EVENTS.register("camera_joined")
@dataclass(frozen=True, kw_only=True)
class CameraJoined(Event):
    """A (re)started or reconnected camera is in the gate again from `frame` on."""

    camera: str
    frame: int


@EVENTS.register("camera_stopped")
@dataclass(frozen=True, kw_only=True)
class CameraStopped(Event):
    camera: str


@EVENTS.register("ring_recreated")
@dataclass(frozen=True, kw_only=True)
class RingRecreated(Event):
    """A camera has a new frame ring (new size, rejoined); displays re-attach."""

    camera: str


@EVENTS.register("writer_failed")
@dataclass(frozen=True, kw_only=True)
class WriterFailed(Event):
    camera: str
    message: str


@EVENTS.register("sensor_error")
@dataclass(frozen=True, kw_only=True)
class SensorError(Event):
    sensor: str
    message: str


@EVENTS.register("paused")
@dataclass(frozen=True, kw_only=True)
class Paused(Event):
    """Writing of the take paused from frame number `frame` on; the cameras and the
    preview go on."""

    frame: int | None = None


@EVENTS.register("resumed")
@dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    """Writing of the take goes on from frame number `frame` (the frames between the
    pause and it are in no file)."""

    frame: int | None = None


@EVENTS.register("frozen")
@dataclass(frozen=True, kw_only=True)
class Frozen(Event):
    """Freeze preview: every camera is held at one frame (a take gets no frames)."""


@EVENTS.register("unfrozen")
@dataclass(frozen=True, kw_only=True)
class Unfrozen(Event):
    """The cameras run again after a freeze."""


# --- recordings ----------------------------------------------------------------------------

@EVENTS.register("recording_started")
@dataclass(frozen=True, kw_only=True)
class RecordingStarted(Event):
    folder: str
    first_frame: int


@EVENTS.register("recording_error")
@dataclass(frozen=True, kw_only=True)
class RecordingError(Event):
    """A writer failed; the recording ends for every camera at the last complete set."""

    camera: str
    message: str


@EVENTS.register("recording_stopped")
@dataclass(frozen=True, kw_only=True)
class RecordingStopped(Event):
    """Capture is free again; assembly of the final files follows."""

    folder: str


@EVENTS.register("assembly_progress")
@dataclass(frozen=True, kw_only=True)
class AssemblyProgress(Event):
    folder: str
    fraction: float


@EVENTS.register("recording_finalized")
@dataclass(frozen=True, kw_only=True)
class RecordingFinalized(Event):
    folder: str
    status: str
    frames: dict[str, int | None] | None  # None: a camera whose count is unknown
    errors: list[str]


@EVENTS.register("recording_resumed")
@dataclass(frozen=True, kw_only=True)
class RecordingResumed(Event):
    """auto_resume started the session's next take."""

    folder: str
    take: int


@EVENTS.register("recording_recovered")
@dataclass(frozen=True, kw_only=True)
class RecordingRecovered(Event):
    """A recording a crash left unfinished was assembled at start-up."""

    folder: str
    summary: dict[str, Any]


@EVENTS.register("export_progress")
@dataclass(frozen=True, kw_only=True)
class ExportProgress(Event):
    """An export of a recording is `fraction` (0..1) done; at most ten a second."""

    folder: str
    to: str
    fraction: float


@EVENTS.register("export_finished")
@dataclass(frozen=True, kw_only=True)
class ExportFinished(Event):
    """An export ended: `output` is what it wrote, or `error` says why it did not."""

    folder: str
    to: str
    output: str | None
    error: str | None


# --- the service ---------------------------------------------------------------------------

@EVENTS.register("camera_status")
@dataclass(frozen=True, kw_only=True)
class CameraStatusChanged(Event):
    """The supervisor's view of a camera changed (a CameraStatus value)."""

    camera: str
    status: str
    error: str | None


@EVENTS.register("rings_changed")
@dataclass(frozen=True, kw_only=True)
class RingsChanged(Event):
    """What a display needs to attach to every running camera's ring."""

    rings: list[dict[str, Any]]


@EVENTS.register("stats")
@dataclass(frozen=True, kw_only=True)
class Stats(Event):
    """About once a second: per-camera status and figures, the live sync spread, and the
    recording's elapsed time (the engine's clock) and frame sets recorded so far (both
    None when not recording; neither counts a writing pause or a freeze). `paused`:
    writing of the take is paused (the cameras run on); `frozen`: the cameras are held
    (Freeze preview)."""

    cameras: list[dict[str, Any]]
    spread: dict[str, Any] | None
    paused: bool
    elapsed_s: float | None = None
    recorded_frames: int | None = None
    frozen: bool = False


@EVENTS.register("device")
@dataclass(frozen=True, kw_only=True)
class Device(Event):
    """About once a second: the workstation's status (engine.system.device_monitor), the
    same keys as the status file other programs read."""

    device_id: str | None
    software_version: str
    uptime_seconds: float
    engine_state: str
    cpu: dict[str, Any]
    memory: dict[str, Any]
    storage: dict[str, Any]
    network: dict[str, Any]
    recording: dict[str, Any]
    battery: dict[str, Any] | None
    device_healthy: bool
    device_error: str | None
    warnings: list[str]


@EVENTS.register("error")
@dataclass(frozen=True, kw_only=True)
class Error(Event):
    message: str
