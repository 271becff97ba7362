"""EngineLink: the engine client as Qt signals, for the widgets that are handed it.

EngineEvents declares one signal per engine event (engine.wire.events), named as the
event and carrying its typed object; a widget connects to the events it needs. A test
keeps this list equal to the registry's.

Events arrive on the client's reader thread, which only puts them on a thread-safe
queue; a GUI-thread timer drains it and emits the signals. (Emitting from the reader
thread crashed PySide6 with a refcount error, now and then.) No frame ever travels
this way: tiles read the shared-memory rings themselves.

The link also knows whether the engine is there (`liveness`): the connection's end is
seen at once, and silence (the engine sends stats every second) within SILENCE_S. With
a `restart` function (the app's), `restart_engine` starts a new engine and re-attaches.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any, Literal

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from engine.client import EngineClient, EngineCommandError, EngineNotRunning
from engine.wire.commands import Command
from engine.wire.events import Error, Event, RecordingError, SensorError

DRAIN_INTERVAL_MS = 50
SILENCE_S = 3.0  # no event for this long (stats come every second): "not responding"
Liveness = Literal["connected", "not responding", "lost"]


class EngineEvents(QObject):
    """One signal per engine event, each carrying the event object (engine.wire.events)."""

    # the capture group
    group_started = Signal(object)
    camera_failed = Signal(object)
    camera_lost = Signal(object)
    camera_reconnected = Signal(object)
    camera_joined = Signal(object)
    camera_stopped = Signal(object)
    ring_recreated = Signal(object)
    writer_failed = Signal(object)
    sensor_error = Signal(object)
    paused = Signal(object)
    resumed = Signal(object)
    frozen = Signal(object)
    unfrozen = Signal(object)
    # recordings
    recording_started = Signal(object)
    recording_error = Signal(object)
    recording_stopped = Signal(object)
    assembly_progress = Signal(object)
    recording_finalized = Signal(object)
    recording_resumed = Signal(object)
    recording_recovered = Signal(object)
    export_progress = Signal(object)
    export_finished = Signal(object)
    # the service
    camera_status = Signal(object)
    rings_changed = Signal(object)
    stats = Signal(object)
    device = Signal(object)
    error = Signal(object)

    anyEvent = Signal(object)  # every event, just before its own signal (the event log)

    def signal_of(self, event: Event) -> SignalInstance:
        """The signal of an event's type."""
        signal: SignalInstance = getattr(self, event.NAME)
        return signal


class EngineLink(EngineEvents):
    """The engine's events as signals, and commands that report failures instead of raising."""

    errorRaised = Signal(str)  # refused commands and the engine's errors, for the user to see
    disconnected = Signal(str)  # the connection ended (the reason)
    reconnected = Signal()  # a restarted engine answers: widgets read its state again
    livenessChanged = Signal(str)  # Liveness

    def __init__(
        self, client: EngineClient, parent: QObject | None = None, *,
        restart: Callable[[], EngineClient] | None = None,
    ) -> None:
        super().__init__(parent)
        for failure in (self.error, self.recording_error, self.sensor_error):
            failure.connect(self._relay_error)
        self._restart = restart
        self.liveness: Liveness = "connected"
        self._incoming: queue.SimpleQueue[Event | EngineClient] = queue.SimpleQueue()
        self._heard_at = time.monotonic()
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self._drain_timer.timeout.connect(self._drain)
        self._drain_timer.start()
        self._attach(client)

    def _attach(self, client: EngineClient) -> None:
        self.client = client
        self._heard_at = time.monotonic()
        # The client hands itself over when its connection ends (on its reader thread).
        client.on_close(lambda: self._incoming.put(client))
        client.subscribe(self._incoming.put)

    def _drain(self) -> None:
        while True:
            try:
                item = self._incoming.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, EngineClient):
                if item is self.client:  # not a replaced client's late goodbye
                    self._lose("it exited or was killed")
                continue
            self._heard_at = time.monotonic()
            self.dispatch(item)
        if self.liveness != "lost":
            silent = time.monotonic() - self._heard_at > SILENCE_S
            self._set_liveness("not responding" if silent else "connected")

    def close(self) -> None:
        """Close the connection on purpose: nothing is heard or emitted any more, not even
        the 'lost' its own goodbye would report (widgets it fed may be gone already)."""
        self._drain_timer.stop()
        self.client.close()

    def _set_liveness(self, liveness: Liveness) -> None:
        if liveness != self.liveness:
            self.liveness = liveness
            self.livenessChanged.emit(liveness)

    def _lose(self, reason: str) -> None:
        if self.liveness != "lost":
            self._set_liveness("lost")
            self.disconnected.emit(reason)

    @property
    def can_restart(self) -> bool:
        return self._restart is not None

    def restart_engine(self) -> bool:
        """Start a new engine (it finishes any take the old one left) and attach to it;
        False, with errorRaised, when it does not answer."""
        if self._restart is None:
            return False
        try:
            client = self._restart()
        except EngineNotRunning as exc:
            self.errorRaised.emit(f"the engine did not start: {exc}")
            return False
        old, self.client = self.client, client
        old.close()
        self._attach(client)
        self._set_liveness("connected")
        self.reconnected.emit()
        return True

    def dispatch(self, event: Event) -> None:
        """Emit an event's signals (as the engine's events arrive)."""
        self.anyEvent.emit(event)
        self.signal_of(event).emit(event)

    def _relay_error(self, event: Error | RecordingError | SensorError) -> None:
        self.errorRaised.emit(event.message)

    def command(self, command: Command) -> Any | None:
        """Run an engine command; on refusal emit errorRaised with the reason, return None."""
        return self.try_command(command)[0]

    def try_command(self, command: Command) -> tuple[Any | None, str]:
        """Like command, and also return the refusal reason ("" on success) for the
        widget that asked; errorRaised still tells the main window."""
        try:
            return self.client.call(command), ""
        except EngineCommandError as exc:
            reason = f"{command.NAME}: {exc}"
        except EngineNotRunning as exc:
            reason = str(exc)
            self._lose(reason)
        self.errorRaised.emit(reason)
        return None, reason
