"""The controller's handle on one camera and its writer, with the camera's explicit state.

A camera is in exactly one CameraState. `ALLOWED` lists every transition and the
handle's methods are the only way to make one, so an impossible sequence (a stopped
camera "joining", a failed one "losing its stream") raises instead of leaving the
controller believing two things at once. This is also the one place that says how a
state reads: `status` for display (engine.wire.status.CameraStatus, which carries the
colour) and `absence` for "why is this camera not in the gate".

`Roster` holds every handle of a group in control-block row order; `await_reply` waits
for a process's answer on a handle's reply queue.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from engine.capture.errors import GroupError
from engine.ipc.messages import (
    Applied,
    CameraReply,
    Failed,
    Opened,
    PrepareFailed,
    Reconnected,
    Rejected,
    WriterReply,
)
from engine.ipc.ring import FrameRing
from engine.specs import CameraSpec
from engine.wire.status import CameraStatus


class CameraState(Enum):
    """Where one camera is in its life; only RUNNING counts in the sync gate."""

    STARTING = "starting"  # a process is opening the source or waiting for its ring
    RUNNING = "running"  # in the sync gate: grabs in lock-step with the others
    LOST = "lost"  # its stream dropped; the process reconnects outside the gate
    FAILED = "failed"  # the process failed or could not open (`error` says why); no process
    STOPPED = "stopped"  # stopped on request; no process until it is started again


ALLOWED: dict[CameraState, frozenset[CameraState]] = {
    CameraState.STARTING: frozenset({CameraState.RUNNING, CameraState.LOST, CameraState.FAILED}),
    CameraState.RUNNING: frozenset({CameraState.LOST, CameraState.FAILED}),
    CameraState.LOST: frozenset({CameraState.RUNNING, CameraState.FAILED}),
    CameraState.FAILED: frozenset({CameraState.STARTING, CameraState.STOPPED}),
    CameraState.STOPPED: frozenset({CameraState.STARTING}),
}

_DISPLAY = {
    CameraState.STARTING: CameraStatus.STARTING,
    CameraState.RUNNING: CameraStatus.RUNNING,
    CameraState.LOST: CameraStatus.RECONNECTING,
    CameraState.FAILED: CameraStatus.FAILED,
    CameraState.STOPPED: CameraStatus.STOPPED,
}


class IllegalTransition(GroupError):
    """A camera was asked to move between two states that are not connected."""


@dataclass
class WriterHandle:
    """The recording writer process of one camera; replaced when it dies."""

    process: Any
    conn: Connection
    replies: queue.Queue[WriterReply] = field(default_factory=queue.Queue)
    alive: bool = True


@dataclass(eq=False)
class CameraHandle:
    """One camera as the controller sees it: process, pipe, ring, settings, state.

    `process` / `conn` are None while no process runs (FAILED, STOPPED). `count`:
    frames published, kept while the camera is out of the gate. `lifecycle_lock` serializes
    restart, stop and rejoin of this camera.
    """

    spec: CameraSpec
    index: int
    writer: WriterHandle
    state: CameraState = CameraState.STOPPED
    process: Any = None
    conn: Connection | None = None
    replies: queue.Queue[CameraReply] = field(default_factory=queue.Queue)
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    lifecycle_lock: threading.Lock = field(default_factory=threading.Lock)
    ring: FrameRing | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    properties: list[dict[str, Any]] = field(default_factory=list)
    capture_clock: str = "after_grab"
    stream_template: bytes = b""  # not empty: recorded by copy (a packet ring)
    error: str | None = None
    count: int = 0
    _transition: threading.Lock = field(default_factory=threading.Lock)

    @property
    def camera_id(self) -> str:
        return self.spec.camera_id

    def keep_changes(self, changes: dict[str, Any]) -> None:
        """Settings the camera accepted become part of its spec, so a process the
        supervisor restarts opens with them, not with the rig's first ones."""
        geometry = {key: changes[key] for key in ("width", "height", "fps") if key in changes}
        others = {key: value for key, value in changes.items() if key not in geometry}
        self.spec = replace(self.spec, **geometry, settings={**self.spec.settings, **others})

    def described(self, reply: Opened | Applied | Reconnected) -> None:
        """Take what the camera process says its source is now."""
        self.settings, self.properties = reply.settings, reply.properties
        self.capture_clock = reply.capture_clock
        self.stream_template = reply.stream_template

    # --- transitions ---------------------------------------------------------------------

    def _move(self, to: CameraState) -> CameraState:
        """Make one transition; returns the state it left."""
        previous = self.state
        if to not in ALLOWED[previous]:
            raise IllegalTransition(f"{self.camera_id}: cannot go from {previous.value} "
                                    f"to {to.value}")
        self.state = to
        return previous

    def spawned(self, process: Any, conn: Connection) -> None:
        """A new process opens the source (after a stop or a failure)."""
        with self._transition:
            self._move(CameraState.STARTING)
            self.replies = queue.Queue()
            self.error = None
            self.process, self.conn = process, conn

    def admitted(self, frame: int) -> None:
        """The camera has its ring and its place in the gate from `frame` on."""
        with self._transition:
            self._move(CameraState.RUNNING)
            self.count = frame

    def lost(self) -> CameraState | None:
        """The stream dropped; the process reconnects. Returns the state it left, or None
        when the report is late (the camera failed or stopped meanwhile)."""
        with self._transition:
            if self.state not in (CameraState.STARTING, CameraState.RUNNING):
                return None
            return self._move(CameraState.LOST)

    def fail(self, reason: str, process: Any = None) -> CameraState | None:
        """The camera's process failed (or is being ended) for `reason`.

        Returns the state it left, or None when there was nothing to fail: the camera
        already failed or is stopped, or `process` (when given) is not its current one
        (a late report from a process a restart replaced).
        """
        with self._transition:
            if self.state in (CameraState.FAILED, CameraState.STOPPED):
                return None
            if process is not None and process is not self.process:
                return None
            self.error = reason
            return self._move(CameraState.FAILED)

    def stop(self) -> None:
        """Stopped on request (its process already ended); stopping twice is harmless."""
        with self._transition:
            if self.state is not CameraState.STOPPED:
                self._move(CameraState.STOPPED)

    # --- how the state reads -----------------------------------------------------------------

    @property
    def member(self) -> bool:
        """In the sync gate."""
        return self.state is CameraState.RUNNING

    @property
    def listening(self) -> bool:
        """The controller reads this camera's process (its pipe and its death)."""
        return self.process is not None and self.state in (
            CameraState.STARTING, CameraState.RUNNING, CameraState.LOST)

    @property
    def alive(self) -> bool:
        return self.listening and self.process.is_alive()

    def status(self, paused: bool) -> CameraStatus:
        """How the camera shows in status and stats; `paused`: the group is held (Freeze
        preview), which shows a camera in the gate as PAUSED. A writing pause leaves the
        cameras running, so it does not change their status."""
        if self.member and paused:
            return CameraStatus.PAUSED
        return _DISPLAY[self.state]

    def absence(self) -> str:
        """Why the camera is not in the gate, in a few words (a failure: its reason)."""
        if self.state is CameraState.FAILED and self.error:
            return self.error
        return _DISPLAY[self.state].value


class Roster:
    """Every camera of the group, in control-block row order, and questions about them all."""

    def __init__(self) -> None:
        self.cameras: list[CameraHandle] = []

    def __iter__(self) -> Iterator[CameraHandle]:
        return iter(self.cameras)

    def find(self, camera_id: str) -> CameraHandle | None:
        return next((c for c in self.cameras if c.camera_id == camera_id), None)

    def members(self) -> list[CameraHandle]:
        return [c for c in self.cameras if c.member]

    def rows(self) -> list[int]:
        """Control-block rows of the cameras in the gate."""
        return [c.index for c in self.cameras if c.member]

    def idle_frame(self) -> int:
        """The common frame while nobody grabs: where the last camera stopped."""
        return max((c.count for c in self.cameras), default=0)

    def failed(self) -> list[str]:
        return [c.camera_id for c in self.cameras if c.state is CameraState.FAILED]

    def require_running(self, cameras: list[CameraHandle] | None = None) -> None:
        """Raise GroupError unless every camera that should run (or those given) is in
        the gate."""
        if cameras is None:
            cameras = [c for c in self.cameras if c.state is not CameraState.STOPPED]
        if not cameras:
            raise GroupError("no camera is running")
        out = [f"{c.camera_id} ({c.absence()})" for c in cameras if not c.member]
        if out:
            raise GroupError("cameras are not running: " + "; ".join(out)
                             + " (stop a camera to go on without it)")


Reply = TypeVar("Reply")


def await_reply(
    replies: queue.Queue[Reply], wanted: tuple[type, ...], deadline: float,
    closing: threading.Event, timeout_s: float,
) -> Reply | Failed:
    """The next reply of a wanted type, or a refusal (Failed, Rejected, PrepareFailed) as it
    came; Failed on time-out (`timeout_s` names the limit) or when the group closes."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Failed(f"no answer within {timeout_s:.0f} s")
        if closing.is_set():
            return Failed("the capture group is closing")
        try:
            reply = replies.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if isinstance(reply, (*wanted, Failed, Rejected, PrepareFailed)):
            return reply
