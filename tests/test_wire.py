"""The typed wire: every command and event round-trips; malformed ones are refused clearly;
the server answers a bad request and carries on, and masks every password it sends."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import threading
import types
from collections.abc import Iterator
from multiprocessing.connection import Client, Connection
from typing import Any, Union, get_args, get_origin

import pytest

from engine.client import EngineClient, EngineCommandError
from engine.service.rig_service import RigService
from engine.service.server import EngineServer, mask_secrets
from engine.wire import framing
from engine.wire.commands import (
    COMMANDS,
    AddCamera,
    Export,
    Record,
    Set,
    parse_request,
    request,
)
from engine.wire.events import EVENTS, CameraFailed, Event, ExportFinished, ExportProgress, Stats
from engine.wire.paths import key_path, socket_path
from engine.wire.registry import Registry, WireError
from engine.wire.status import CameraStatus
from tests.engines import short_folder
from tests.waiting import wait_for


def sample(hint: Any) -> Any:
    """A value of the type a field declares (the non-None arm of an optional)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return sample(next(arm for arm in get_args(hint) if arm is not type(None)))
    if origin is list:
        return [sample(get_args(hint)[0])]
    if origin is dict:
        return {"key": sample(get_args(hint)[1])}
    return {str: "text", int: 7, float: 2.5, bool: True}.get(hint, {"any": [1, "two"]})


def example(registry: Registry[Any], name: str) -> Any:
    fields = registry.fields(name)
    return registry.type_of(name)(**{field: sample(hint) for field, hint in fields.items()})


@pytest.mark.parametrize("name", COMMANDS.names())
def test_every_command_round_trips_through_json(name):
    command = example(COMMANDS, name)
    assert COMMANDS.from_wire(json.loads(json.dumps(COMMANDS.to_wire(command)))) == command
    request_id, parsed = parse_request(framing.encode(request(5, command)))
    assert (request_id, parsed) == (5, command)


@pytest.mark.parametrize("name", EVENTS.names())
def test_every_event_round_trips_through_json(name):
    event = example(EVENTS, name)
    wire = json.loads(json.dumps(EVENTS.to_wire(event)))
    assert wire["event"] == name
    assert EVENTS.from_wire(wire) == event


def test_an_export_and_its_events_round_trip_with_their_empty_fields():
    command = Export(folder="/r/take", to="nwb")
    assert command.output is None
    assert parse_request(framing.encode(request(9, command))) == (9, command)
    for event in (ExportProgress(folder="/r/take", to="nwb", fraction=1),
                  ExportFinished(folder="/r/take", to="nwb", output=None, error="disk full"),
                  ExportFinished(folder="/r/take", to="nwb", output="/r/take.nwb", error=None)):
        assert EVENTS.from_wire(json.loads(json.dumps(EVENTS.to_wire(event)))) == event


def test_optional_fields_may_be_left_out():
    assert COMMANDS.from_wire({"cmd": "record"}) == Record()
    added = COMMANDS.from_wire({"source": "synthetic"}, "add_camera")
    assert added == AddCamera(source="synthetic")
    assert EVENTS.from_wire({"event": "stats", "cameras": [], "spread": None,
                             "paused": False}).elapsed_s is None


@pytest.mark.parametrize("data, name, error", [
    ({"cmd": "format_disk"}, None, "unknown command 'format_disk'"),
    ({"cmd": "set", "camera": "left"}, None, "command 'set' needs 'changes'"),
    ({"cmd": "record", "bogus": 1}, None, "command 'record' has no field 'bogus'"),
    ({"cmd": "set", "camera": 5, "changes": {}}, None, "'camera' must be a string, not int"),
    ({"cmd": "stop", "wait": "yes"}, None, "'wait' must be true or false, not str"),
    ({"cmd": "add_camera", "source": "x", "width": True}, None, "'width' must be an integer"),
    ({"cmd": "export", "folder": "/r/take"}, None, "command 'export' needs 'to'"),
    ({"cmd": "export", "folder": "/r/take", "to": ["nwb"]}, None, "'to' must be a string"),
    ([1, 2], "ping", "a command must be a JSON object"),
    ({"camera": "left"}, None, "a command needs a string 'cmd'"),
])
def test_malformed_commands_are_refused_naming_the_problem(data, name, error):
    with pytest.raises(WireError, match=error):
        COMMANDS.from_wire(data, name)


@pytest.mark.parametrize("data, error", [
    ({"event": "camera_exploded", "camera": "a"}, "unknown event 'camera_exploded'"),
    ({"event": "camera_failed", "camera": "a"}, "event 'camera_failed' needs 'message'"),
    ({"event": "paused", "why": "x"}, "event 'paused' has no field 'why'"),
    ({"event": "camera_joined", "camera": "a", "frame": 1.5}, "'frame' must be an integer"),
    ({"event": "recording_finalized", "folder": "f", "status": "finalized",
      "frames": {"a": "many"}, "errors": []}, "'frames' must be an object or null"),
    ({"event": "export_progress", "folder": "f", "to": "nwb", "fraction": "half"},
     "'fraction' must be a number, not str"),
    ({"event": "export_finished", "folder": "f", "to": "nwb", "output": None},
     "event 'export_finished' needs 'error'"),
])
def test_malformed_events_are_refused_naming_the_problem(data, error):
    with pytest.raises(WireError, match=error):
        EVENTS.from_wire(data)


def test_every_service_command_has_its_handler_with_the_same_arguments():
    """The server runs the RigService method of a command's name with its fields."""
    for name in COMMANDS.names():
        if name in ("subscribe", "shutdown"):  # the server's own
            continue
        parameters = list(inspect.signature(getattr(RigService, name)).parameters)[1:]
        assert parameters == list(COMMANDS.fields(name)), name


def test_camera_status_values_all_have_a_colour_and_a_meaning():
    for status in CameraStatus:
        assert status.colour.startswith("#") and len(status.colour) == 7
        assert status.meaning
    assert CameraStatus("running").delivering and not CameraStatus("stopped").delivering
    assert CameraStatus.colour_of("CRASHED") == CameraStatus.CRASHED.colour
    assert CameraStatus.colour_of("warming") == CameraStatus.STOPPED.colour  # unknown: grey


def test_masking_walks_every_string_of_a_message():
    known = {"rtsp://op:p@ss/word@cam/s": "rtsp://op:***@cam/s"}
    message = {"id": 1, "result": [{"source": "rtsp://op:p@ss/word@cam/s"},
                                   "open rtsp://op:p@ss/word@cam/s failed", 3, None],
               "error": "could not open https://admin:secret@10.0.0.9/video"}
    masked = json.dumps(mask_secrets(message, known))
    assert "p@ss" not in masked and "secret" not in masked
    assert "rtsp://op:***@cam/s" in masked and "https://admin:***@10.0.0.9/video" in masked


# --- the server, in this process, with a stand-in service ---------------------------------

URL = "rtsps://operator:hunter2@10.0.0.5/stream"


class FakeService:
    """What the server needs of a RigService, with a camera password in every answer."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit

    def start(self) -> None: ...

    def close(self) -> None: ...

    def secrets(self) -> dict[str, str]:
        return {URL: "rtsps://operator:***@10.0.0.5/stream"}

    def ping(self) -> dict[str, Any]:
        return {"version": "test"}

    def status(self) -> dict[str, Any]:
        self.emit(CameraFailed(camera="door", message=f"cannot open {URL}"))
        return {"cameras": [{"id": "door", "source": URL}]}

    def properties(self, camera: str) -> list[dict[str, Any]]:
        raise ValueError(f"{camera}: {URL} does not answer")

    def rings(self) -> list[dict[str, Any]]:
        raise ZeroDivisionError(URL)  # a bug: reported as an internal error, masked too


@pytest.fixture
def server() -> Iterator[EngineServer]:
    folder = short_folder()
    engine = EngineServer(FakeService, folder)  # type: ignore[arg-type]
    thread = threading.Thread(target=engine.serve, daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        engine.shutdown_requested.set()
        thread.join(5)
        shutil.rmtree(folder, ignore_errors=True)


def connect(server: EngineServer) -> Connection:
    """A connection once the server accepts one: its socket file appears when it is
    bound, a moment before it listens (a connection then is refused)."""

    def attempt() -> Connection | None:
        try:
            return Client(str(socket_path(server.folder)), family="AF_UNIX",
                          authkey=key_path(server.folder).read_bytes())
        except (FileNotFoundError, ConnectionRefusedError):
            return None

    return wait_for(attempt, 5, "the engine server to accept a connection")


def test_the_server_answers_malformed_requests_and_stays_up(server):
    conn = connect(server)
    try:
        def ask(message: dict[str, Any]) -> dict[str, Any]:
            conn.send_bytes(framing.encode(message))
            answer: dict[str, Any] = json.loads(conn.recv_bytes())
            return answer

        assert ask({"id": 1, "cmd": "format_disk"}) == {
            "id": 1, "ok": False, "error": "unknown command 'format_disk'"}
        answer = ask({"id": 2, "cmd": "set", "args": {"camera": "a"}})
        assert answer["id"] == 2 and "bad arguments for 'set'" in answer["error"]
        assert "needs 'changes'" in answer["error"]
        answer = ask({"id": 3, "cmd": "ping", "args": {"loud": True}})
        assert answer["id"] == 3 and "has no field 'loud'" in answer["error"]
        answer = ask({"id": 4, "cmd": "stop", "args": {"wait": 1}})
        assert "'wait' must be true or false" in answer["error"]
        assert ask({"id": 5, "cmd": "ping"}) == {"id": 5, "ok": True,
                                                   "result": {"version": "test"}}
    finally:
        conn.close()


def test_no_password_leaves_the_server(server):
    events: list[Event] = []
    with EngineClient(connect(server), server.folder, timeout_s=10) as client:
        client.subscribe(events.append)
        status = client.status()
        with pytest.raises(EngineCommandError) as refused:
            client.properties("door")
        with pytest.raises(EngineCommandError) as crashed:
            client.rings()
        for _ in range(100):
            if events:
                break
            threading.Event().wait(0.05)
    sent = [json.dumps(status), str(refused.value), str(crashed.value),
            *(json.dumps(EVENTS.to_wire(event)) for event in events)]
    assert events and isinstance(events[0], CameraFailed)
    for text in sent:
        assert "hunter2" not in text
        assert "operator:***@10.0.0.5" in text


def test_the_client_drops_an_event_the_registry_does_not_declare(server):
    seen: list[Event] = []
    with EngineClient(connect(server), server.folder, timeout_s=10) as client:
        client._callbacks.append(seen.append)
        client._deliver({"event": "telepathy", "time": 1.0})
        client._deliver({"event": "stats", "time": 1.0, "cameras": [], "spread": None,
                         "paused": True, "elapsed_s": 3.0})
    assert seen == [Stats(time=1.0, cameras=[], spread=None, paused=True, elapsed_s=3.0)]


def test_commands_are_plain_frozen_dataclasses():
    command = Set(camera="left", changes={"brightness": 3})
    assert dataclasses.is_dataclass(command)
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.camera = "right"  # type: ignore[misc]
