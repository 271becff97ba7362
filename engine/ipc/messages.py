"""The messages between the capture controller and the processes it spawns, declared once.

Frozen dataclasses pickled over multiprocessing Pipes: commands, replies and events,
each a few hundred bytes at most and rare (frames never travel this way; they live in
the rings). Camera, writer and sensor processes and their controller side all speak
these types, so a message cannot be misspelled on one side only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --- to any process ---------------------------------------------------------------------


@dataclass(frozen=True)
class Exit:
    """End the process (a writer or sensor finishes what it records first)."""


# --- controller -> camera process (the camera reads them when its command count moves) ---


@dataclass(frozen=True)
class AttachRing:
    """Attach to this ring, drain stale frames, be ready (start-up barrier, ring swap)."""

    name: str


@dataclass(frozen=True)
class ApplySettings:
    """Apply these settings; the group is held meanwhile."""

    changes: dict[str, Any]


# --- camera process -> controller --------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The source is open with these actual settings and properties; capture_clock: where
    its frames' capture times come from (a CaptureClock of sources/base.py);
    stream_template: a camera recorded by copy describes its stream with it (see
    sources/stream_template.py) and needs a packet ring; empty: it sends pictures."""

    settings: dict[str, Any]
    properties: list[dict[str, Any]]
    capture_clock: str
    stream_template: bytes = b""


@dataclass(frozen=True)
class Attached:
    ring: str


@dataclass(frozen=True)
class Applied:
    """Settings in effect; `reshape`: size or fps changed, the camera waits for a new ring."""

    settings: dict[str, Any]
    properties: list[dict[str, Any]]
    capture_clock: str
    reshape: bool
    stream_template: bytes = b""


@dataclass(frozen=True)
class Rejected:
    """A setting the source refused; nothing changed."""

    reason: str


@dataclass(frozen=True)
class StreamLost:
    """The stream dropped; the process left the gate and reconnects."""

    reason: str


@dataclass(frozen=True)
class Reconnected:
    """The stream is back; the camera waits to be admitted to the gate again."""

    settings: dict[str, Any]
    properties: list[dict[str, Any]]
    capture_clock: str
    stream_template: bytes = b""


@dataclass(frozen=True)
class Failed:
    """The process (or a wait for its answer) failed, and why. A camera process does not
    name itself: its controller knows which camera it is and says so."""

    reason: str


CameraReply = Opened | Attached | Applied | Rejected | Failed


# --- controller <-> writer process ---------------------------------------------------------


@dataclass(frozen=True)
class RecordJob:
    """Everything a writer needs for one recording of one camera; encoder: FFmpeg's
    encoder of the codec (a hardware one that does not open falls back to libx264),
    preset: x264's, threads: a software encoder's."""

    ring_name: str
    video_path: Path
    timestamps_path: Path
    codec: str
    width: int
    height: int
    fps: float
    encoder: str
    preset: str
    threads: int
    stream_template: bytes = b""  # not empty: write the ring's packets as they are (copy)
    channels: int = 3  # of the ring's pictures: 3 BGR, 1 mono (a gray video)


@dataclass(frozen=True)
class Prepare:
    """Open the files of this job and answer Prepared or PrepareFailed."""

    job: RecordJob


@dataclass(frozen=True)
class StartWriting:
    """Record from this frame number on (the group is gathered there)."""

    first_frame: int


@dataclass(frozen=True)
class Abort:
    """Another writer could not prepare: close the files, record nothing."""


@dataclass(frozen=True)
class Prepared:
    """The files are open; encoder: the FFmpeg encoder writing the video ("" for a copy),
    fallback: why it is not the job's encoder (None: it is)."""

    encoder: str = ""
    fallback: str | None = None


@dataclass(frozen=True)
class PrepareFailed:
    reason: str


@dataclass(frozen=True)
class WriterFinished:
    """One camera's part of a recording ended: frames written, why it ended early if it did."""

    frames: int | None
    error: str | None
    first_frame: int | None = None
    end_frame: int | None = None


WriterReply = Prepared | PrepareFailed | Failed


# --- controller <-> sensor process ---------------------------------------------------------


@dataclass(frozen=True)
class RecordSensor:
    """Start writing `<folder>/sensors/<name>.csv`."""

    folder: str


@dataclass(frozen=True)
class StopSensor:
    """Close (fsync) the sidecar file; always answered by SensorFinished."""


@dataclass(frozen=True)
class SensorOpened:
    fields: list[str]
    rate_hz: float


@dataclass(frozen=True)
class SensorRecording:
    """The sidecar file exists and samples are being written to it."""

    path: str


@dataclass(frozen=True)
class SensorFinished:
    """A recording's outcome (path None: there was none); error is its first failure."""

    samples: int | None
    error: str | None
    path: str | None


@dataclass(frozen=True)
class SensorFailed:
    """Reported once per cause; the process carries on (see engine/workers/sensor.py)."""

    message: str
