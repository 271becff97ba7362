"""EngineLink: one signal per engine event, each carrying the typed event; commands as objects."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSettings, Signal

from engine.client import EngineCommandError
from engine.wire.commands import Command, Pause, Set
from engine.wire.events import (
    EVENTS,
    CameraFailed,
    Error,
    Event,
    Paused,
    RecordingStarted,
    Stats,
)
from recorder_gui.engine_link import EngineEvents, EngineLink
from recorder_gui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("no_leaked_widgets")


class RecordingClient:
    """An engine client that keeps the commands it is sent, refuses `set` and answers
    `pause` (anything else: nothing)."""

    def __init__(self) -> None:
        self.sent: list[Command] = []

    def subscribe(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def call(self, command: Command) -> Any:
        self.sent.append(command)
        if isinstance(command, Set):
            raise EngineCommandError("unknown camera 'nope'")
        return {"state": "paused"} if isinstance(command, Pause) else None


@pytest.fixture
def link(qapp):
    return EngineLink(RecordingClient())  # type: ignore[arg-type]


def test_every_event_has_its_signal_and_nothing_else_is_declared():
    declared = {name for name, value in vars(EngineEvents).items() if isinstance(value, Signal)}
    assert declared - {"anyEvent"} == set(EVENTS.names())


def test_an_event_reaches_its_own_signal_only(link, qtbot):
    seen: dict[str, list[Event]] = {name: [] for name in EVENTS.names()}
    for name in EVENTS.names():
        getattr(link, name).connect(seen[name].append)
    every: list[Event] = []
    link.anyEvent.connect(every.append)
    stats = Stats(cameras=[], spread=None, paused=False, elapsed_s=4.0)
    for event in (stats, Paused(), CameraFailed(camera="a", message="gone")):
        link.dispatch(event)
    assert seen["stats"] == [stats] and seen["paused"] == [Paused(time=seen["paused"][0].time)]
    assert [e.NAME for e in every] == ["stats", "paused", "camera_failed"]
    assert sum(map(len, seen.values())) == 3


def test_engine_errors_and_refused_commands_reach_error_raised(link, qtbot):
    raised: list[str] = []
    link.errorRaised.connect(raised.append)
    link.dispatch(Error(message="disk almost full"))
    assert link.command(Pause()) == {"state": "paused"}
    assert link.command(Set(camera="nope", changes={"x": 1})) is None
    assert raised == ["disk almost full", "set: unknown camera 'nope'"]
    assert [c.NAME for c in link.client.sent] == ["pause", "set"]


def test_the_window_shows_the_engines_elapsed_time(qtbot, tmp_path):
    """No GUI clock: the toolbar shows what the engine's stats say."""
    link = EngineLink(RecordingClient())  # type: ignore[arg-type]
    window = MainWindow(link, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    link.setParent(window)
    qtbot.addWidget(window)
    link.dispatch(RecordingStarted(folder="/data/take", first_frame=0))
    assert window.elapsed_label.text() == "00:00:00"
    link.dispatch(Stats(cameras=[], spread=None, paused=False, elapsed_s=75.4))
    assert window.elapsed_label.text() == "00:01:15"
    link.dispatch(Paused())
    link.dispatch(Stats(cameras=[], spread=None, paused=True, elapsed_s=75.9))
    assert window.elapsed_text() == "00:01:15 (PAUSED)"
    window.recording = False  # nothing to ask about on close


class ClosingClient:
    """A client whose close() says goodbye as the real one does (on_close), and whose
    subscribers can be fed an event."""

    def __init__(self) -> None:
        self.subscribers: list[Any] = []
        self.goodbyes: list[Any] = []
        self.closed = False

    def subscribe(self, callback: Any) -> None:
        self.subscribers.append(callback)

    def on_close(self, callback: Any) -> None:
        self.goodbyes.append(callback)

    def close(self) -> None:
        self.closed = True
        for goodbye in self.goodbyes:
            goodbye()


def test_a_link_closed_on_purpose_reports_nothing_more(qtbot):
    """Closing a link stops it: its client's goodbye is not a lost engine, and events
    still queued reach no widget (a test's closed panel crashed on them later)."""
    client = ClosingClient()
    link = EngineLink(client)  # type: ignore[arg-type]
    heard: list[object] = []
    link.disconnected.connect(heard.append)
    link.anyEvent.connect(heard.append)
    for deliver in client.subscribers:
        deliver(Error(message="queued before the close"))
    link.close()
    assert client.closed
    qtbot.wait(300)
    assert heard == [] and link.liveness == "connected"
