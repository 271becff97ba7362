"""Every command a client may send the engine, declared once: name, arguments, their types.

A request travels as {"id": n, "cmd": name, "args": {field: value}}. The server decodes
it with `parse_request` (an unknown command or a malformed argument is answered with a
WireError naming it) and runs the RigService method of the same name with the fields as
keyword arguments; `subscribe` and `shutdown` are the server's own. EngineClient (its
typed convenience methods are thin wrappers), the `ctl` CLI (its sub-commands are
generated from COMMANDS) and the GUI build these objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from engine.wire.registry import Message, Registry, WireError

COMMANDS: Registry[Command] = Registry("command", "cmd")


@dataclass(frozen=True, kw_only=True)
class Command(Message):
    """Base of every command; `args` are its fields as the wire carries them."""

    def args(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- observation -------------------------------------------------------------------------

@COMMANDS.register("ping")
@dataclass(frozen=True, kw_only=True)
class Ping(Command):
    """The engine's version and pid: is it there?"""


@COMMANDS.register("status")
@dataclass(frozen=True, kw_only=True)
class Status(Command):
    """The engine, the rig, every camera, the device, the recording (current and last)."""


@COMMANDS.register("rings")
@dataclass(frozen=True, kw_only=True)
class Rings(Command):
    """Ring name and geometry per running camera, for a display to attach to."""


@COMMANDS.register("properties")
@dataclass(frozen=True, kw_only=True)
class Properties(Command):
    """The settings a camera offers, with their ranges and current values."""

    camera: str


@COMMANDS.register("discover")
@dataclass(frozen=True, kw_only=True)
class Discover(Command):
    """Sources that can be added: the synthetic pattern and every camera found."""


@COMMANDS.register("recordings")
@dataclass(frozen=True, kw_only=True)
class Recordings(Command):
    """The newest recordings in a folder (default: the rig's output folder), newest first."""

    output: str | None = None
    limit: int = 50


@COMMANDS.register("subscribe")
@dataclass(frozen=True, kw_only=True)
class Subscribe(Command):
    """Receive every event from now on on this connection."""


# --- recording ----------------------------------------------------------------------------

@COMMANDS.register("record")
@dataclass(frozen=True, kw_only=True)
class Record(Command):
    """Start recording (by default: the rig's output folder and codec, a time-stamped name).

    A node of a multi-machine rig starts on its coordinator's word: start_at_ns (on the
    node's clock: engine/machine_clock.py) is the moment of the take's first frame set,
    frames the take's length in frame sets (it then ends by itself), rig_take what the
    node's manifest names as the rig's take it belongs to."""

    output: str | None = None
    codec: str | None = None
    name: str | None = None
    start_at_ns: int | None = None
    frames: int | None = None
    rig_take: dict[str, Any] | None = None


@COMMANDS.register("take_summary")
@dataclass(frozen=True, kw_only=True)
class TakeSummary(Command):
    """A finished take of this engine as its manifest tells it (status, cameras and their
    frame counts, the rig's take it belongs to): what a rig's coordinator assembles."""

    folder: str


@COMMANDS.register("take_times")
@dataclass(frozen=True, kw_only=True)
class TakeTimes(Command):
    """One camera's capture times in a finished take, one per video frame, packed
    (engine/wire/nodes.py pack_ns): a rig's coordinator computes its sync report from them."""

    folder: str
    camera: str


@COMMANDS.register("export")
@dataclass(frozen=True, kw_only=True)
class Export(Command):
    """Export a finished recording to another format (in the background: export_progress
    and export_finished events follow; `status` lists the formats)."""

    folder: str
    to: str
    output: str | None = None


@COMMANDS.register("pause")
@dataclass(frozen=True, kw_only=True)
class Pause(Command):
    """Pause writing the take; the cameras and the preview go on (refused when nothing
    is being recorded). With frames, from the take's frame set `frames` on, which the
    cameras must not have reached yet: a rig's nodes pause alike."""

    frames: int | None = None


@COMMANDS.register("resume")
@dataclass(frozen=True, kw_only=True)
class Resume(Command):
    """Write the paused take again; every file skips the same frame sets. With frames,
    from the take's frame set `frames` on (see pause)."""

    frames: int | None = None


@COMMANDS.register("freeze")
@dataclass(frozen=True, kw_only=True)
class Freeze(Command):
    """Freeze preview: hold every camera at one frame (a take gets no frames meanwhile)."""


@COMMANDS.register("unfreeze")
@dataclass(frozen=True, kw_only=True)
class Unfreeze(Command):
    """Release the cameras held by freeze."""


@COMMANDS.register("stop")
@dataclass(frozen=True, kw_only=True)
class Stop(Command):
    """Stop recording; with wait, answer once the final files are assembled. With frames,
    the take ends after exactly that many frame sets from its first (refused once the
    cameras have passed it), so the nodes of a rig end alike."""

    wait: bool = True
    frames: int | None = None


# --- cameras and rig ----------------------------------------------------------------------

@COMMANDS.register("add_camera")
@dataclass(frozen=True, kw_only=True)
class AddCamera(Command):
    """Add a camera to the rig (by default: the next free camN id, the default geometry)."""

    source: str
    id: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    settings: dict[str, Any] | None = None


@COMMANDS.register("remove_camera")
@dataclass(frozen=True, kw_only=True)
class RemoveCamera(Command):
    """Remove a camera from the rig."""

    camera: str


@COMMANDS.register("start_camera")
@dataclass(frozen=True, kw_only=True)
class StartCamera(Command):
    """Start one camera; the others keep running."""

    camera: str


@COMMANDS.register("stop_camera")
@dataclass(frozen=True, kw_only=True)
class StopCamera(Command):
    """Stop one camera and keep it stopped, across engine restarts too."""

    camera: str


@COMMANDS.register("set")
@dataclass(frozen=True, kw_only=True)
class Set(Command):
    """Apply settings to a camera; the answer holds the settings actually in effect."""

    camera: str
    changes: dict[str, Any]


@COMMANDS.register("load_rig")
@dataclass(frozen=True, kw_only=True)
class LoadRig(Command):
    """Replace the rig with the one a rig file (TOML) describes."""

    path: str


@COMMANDS.register("save_rig")
@dataclass(frozen=True, kw_only=True)
class SaveRig(Command):
    """Write the rig as it runs now to a rig file (default: the one it was loaded from)."""

    path: str | None = None


@COMMANDS.register("shutdown")
@dataclass(frozen=True, kw_only=True)
class Shutdown(Command):
    """Finalize any recording and exit."""


# --- requests -----------------------------------------------------------------------------

def request(request_id: int, command: Command) -> dict[str, Any]:
    """The wire form of a command sent as request `request_id`."""
    return {"id": request_id, "cmd": command.NAME, "args": command.args()}


def parse_request(data: bytes) -> tuple[int | None, Command]:
    """(id, command) of a request; WireError naming what is wrong. The id is read first,
    so a malformed command can still be answered under its request's id."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not a JSON message: {exc}") from None
    except RecursionError:
        raise WireError("not a JSON message: nested too deep") from None
    if not isinstance(message, dict):
        raise WireError("a request must be a JSON object")
    request_id = message.get("id")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)):
        raise WireError("'id' must be an integer")
    name = message.get("cmd")
    if not isinstance(name, str):
        raise RequestError(request_id, "'cmd' must be a string")
    try:
        COMMANDS.type_of(name)
    except WireError as exc:
        raise RequestError(request_id, str(exc)) from None
    try:
        return request_id, COMMANDS.from_wire(message.get("args", {}), name)
    except WireError as exc:
        raise RequestError(request_id, f"bad arguments for {name!r}: {exc}") from None


class RequestError(WireError):
    """A request whose id could be read but whose command is malformed."""

    def __init__(self, request_id: int | None, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id
