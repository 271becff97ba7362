"""EngineLink: the engine client as Qt signals, for the widgets that are handed it.

Events arrive on the client's reader thread, which only puts them on a thread-safe
queue; a GUI-thread timer drains it and emits the signals. (Emitting a Signal(dict)
from the reader thread crashed PySide6 with a refcount error, now and then.) No
frame ever travels this way: tiles read the shared-memory rings themselves.
"""

from __future__ import annotations

import queue
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.client import EngineClient, EngineCommandError, EngineNotRunning
from engine.wire.commands import COMMANDS
from engine.wire.events import EVENTS

DRAIN_INTERVAL_MS = 50


class EngineLink(QObject):
    """Signals for engine events, and commands that report failures instead of raising."""

    event = Signal(dict)  # every engine event
    stats = Signal(dict)  # about once a second: per-camera fps / frames / dropped, spread
    recordingStarted = Signal(dict)  # {"folder", "first_frame"}
    recordingStopped = Signal(dict)  # capture is free again; assembly follows
    recordingFinalized = Signal(dict)  # {"folder", "status", "frames", "errors"}
    assemblyProgress = Signal(str, float)  # folder, 0..1
    pausedChanged = Signal(bool)
    ringsChanged = Signal(list)  # [{"camera", "ring", "width", "height", "fps"}]
    cameraFailed = Signal(str, str)  # camera id, reason
    errorRaised = Signal(str)  # engine errors and refused commands, for the user to see
    disconnected = Signal(str)

    def __init__(self, client: EngineClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self._incoming: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self._drain_timer.timeout.connect(self._drain)
        self._drain_timer.start()
        client.subscribe(lambda event: self._incoming.put(EVENTS.to_wire(event)))

    def _drain(self) -> None:
        while True:
            try:
                event = self._incoming.get_nowait()
            except queue.Empty:
                return
            self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        self.event.emit(event)
        kind = event.get("event")
        if kind == "stats":
            self.stats.emit(event)
        elif kind == "recording_started":
            self.recordingStarted.emit(event)
        elif kind == "recording_stopped":
            self.recordingStopped.emit(event)
        elif kind == "recording_finalized":
            self.recordingFinalized.emit(event)
        elif kind == "assembly_progress":
            self.assemblyProgress.emit(event["folder"], float(event["fraction"]))
        elif kind in ("paused", "resumed"):
            self.pausedChanged.emit(kind == "paused")
        elif kind == "rings_changed":
            self.ringsChanged.emit(list(event.get("rings", [])))
        elif kind == "camera_failed":
            self.cameraFailed.emit(event.get("camera", "?"), event.get("message", ""))
        elif kind in ("error", "recording_error", "sensor_error"):
            self.errorRaised.emit(event.get("message", str(event)))

    def command(self, name: str, /, **args: Any) -> Any | None:
        """Run an engine command; on refusal emit errorRaised with the reason, return None."""
        return self.try_command(name, **args)[0]

    def try_command(self, name: str, /, **args: Any) -> tuple[Any | None, str]:
        """Like command, and also return the refusal reason ("" on success) for the
        widget that asked; errorRaised still tells the main window."""
        try:
            return self.client.call(COMMANDS.from_wire(args, name)), ""
        except EngineCommandError as exc:
            reason = f"{name}: {exc}"
        except EngineNotRunning as exc:
            reason = str(exc)
            self.disconnected.emit(reason)
        self.errorRaised.emit(reason)
        return None, reason
