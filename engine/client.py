"""EngineClient: the one way the GUI and the CLI talk to a running engine.

It connects to the engine of the runtime folder, or launches a detached one
when none runs. Commands (engine.wire.commands objects) are synchronous calls;
events arrive on a reader thread, are decoded into engine.wire.events objects
(one the registry does not declare is logged and dropped) and handed to the
subscribed callbacks (keep them short: the GUI client re-posts them to its own
thread).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from engine.wire import commands as cmd
from engine.wire import framing
from engine.wire.events import EVENTS, Event
from engine.wire.paths import RUNTIME_DIR_ENV, key_path, log_path, runtime_dir, socket_path
from engine.wire.registry import WireError

log = logging.getLogger("engine.client")

EventCallback = Callable[[Event], None]
LAUNCH_TIMEOUT_S = 30.0
FROZEN_ENGINE_FLAG = "--engine"  # bundle executable: run the engine CLI


class EngineNotRunning(ConnectionError):
    """No engine answers on the runtime folder (or it went away during a call)."""


class EngineCommandError(RuntimeError):
    """The engine refused a command; the message is the engine's reason."""


def _connect(folder: Path) -> Connection:
    address = socket_path(folder)
    try:
        key = framing.read_key(key_path(folder))
        return Client(str(address), family="AF_UNIX", authkey=key)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise EngineNotRunning(f"engine not running (nothing answers at {address})") from exc
    except (AuthenticationError, EOFError, OSError) as exc:
        raise EngineNotRunning(f"engine at {address} refused the connection: {exc}") from exc


def _shut_down(conn: Connection) -> None:
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def engine_command(*args: str) -> list[str]:
    """The command line of `recorder-engine ARGS` run by this very program: a frozen bundle
    has no Python to run `-m engine`, so its own executable takes FROZEN_ENGINE_FLAG."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_ENGINE_FLAG, *args]
    return [sys.executable, "-m", "engine", *args]


def launch_engine(folder: Path, engine_args: list[str]) -> subprocess.Popen:
    """Start `recorder-engine serve` detached from this process.

    It gets its own session, so closing the GUI or its terminal never stops it. It has no
    terminal: `--log-output` sends its output, its processes' too, to the engine's log;
    what it prints before opening the log (a Python that cannot start it) is appended
    there directly.
    """
    command = engine_command("serve", "--log-output", *engine_args)
    with open(log_path(), "ab") as log_file:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True, env={**os.environ, RUNTIME_DIR_ENV: str(folder)},
        )


class EngineClient:
    """A connection to the engine. Thread-safe; use as a context manager."""

    def __init__(self, conn: Connection, folder: Path, timeout_s: float = 60.0) -> None:
        self.folder = folder
        self.timeout_s = timeout_s
        self.launched = False  # True when connect() started this engine
        self._conn = conn
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._pending_lock = threading.Lock()
        self._callbacks: list[EventCallback] = []
        self._on_close: list[Callable[[], None]] = []
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="engine-client", daemon=True)
        self._reader.start()

    @classmethod
    def connect(
        cls, folder: Path | None = None, *, launch: list[str] | None = None,
        timeout_s: float = 60.0,
    ) -> EngineClient:
        """Connect to the running engine; with `launch`, start one (with those serve
        arguments) when none runs and wait for it to answer."""
        folder = folder or runtime_dir()
        try:
            return cls(_connect(folder), folder, timeout_s)
        except EngineNotRunning:
            if launch is None:
                raise
        return cls.await_engine(launch_engine(folder, launch), folder, timeout_s)

    @classmethod
    def await_engine(
        cls, process: subprocess.Popen, folder: Path, timeout_s: float = 60.0
    ) -> EngineClient:
        """Connect to an engine just launched (launch_engine) once it answers."""
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while True:
            try:
                client = cls(_connect(folder), folder, timeout_s)
                client.launched = True
                return client
            except EngineNotRunning:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise EngineNotRunning(
                        f"the engine did not start; see {log_path()}"
                    ) from None
                time.sleep(0.1)

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Hang up: shut the socket down first so the reader thread sees EOF and ends."""
        self._closed.set()
        with contextlib.suppress(OSError):
            _shut_down(self._conn)
        if threading.current_thread() is not self._reader:
            self._reader.join(2.0)
        with contextlib.suppress(OSError):
            self._conn.close()

    # --- plumbing ---------------------------------------------------------------------

    def _read(self) -> None:
        try:
            while True:
                message = json.loads(self._conn.recv_bytes())
                request_id = message.get("id")
                if "event" in message and request_id is None:
                    self._deliver(message)
                    continue
                with self._pending_lock:
                    waiter = self._pending.pop(request_id, None)
                if waiter is not None:
                    waiter[1].append(message)
                    waiter[0].set()
        except (EOFError, OSError, ValueError):
            pass
        finally:
            self._closed.set()
            with self._pending_lock:
                waiters, self._pending = list(self._pending.values()), {}
            for event, _ in waiters:
                event.set()  # their answer list stays empty: "engine went away"
            for callback in list(self._on_close):
                callback()

    def _deliver(self, message: dict[str, Any]) -> None:
        try:
            event = EVENTS.from_wire(message)
        except WireError as exc:
            log.warning("dropped an event the engine should not send: %s", exc)
            return
        for callback in list(self._callbacks):
            callback(event)

    def call(self, command: cmd.Command) -> Any:
        """Run one command; return its result or raise EngineCommandError / EngineNotRunning."""
        if self._closed.is_set():
            raise EngineNotRunning("not connected to the engine")
        request_id = next(self._ids)
        done, answer = threading.Event(), list[dict[str, Any]]()
        with self._pending_lock:
            self._pending[request_id] = (done, answer)
        try:
            with self._send_lock:
                self._conn.send_bytes(framing.encode(cmd.request(request_id, command)))
        except OSError as exc:
            raise EngineNotRunning(f"engine went away: {exc}") from exc
        if not done.wait(self.timeout_s):
            with self._pending_lock:
                self._pending.pop(request_id, None)
            raise EngineCommandError(f"{command.NAME}: no answer within {self.timeout_s:.0f} s")
        if not answer:
            raise EngineNotRunning(f"the engine stopped during {command.NAME!r}")
        if not answer[0]["ok"]:
            raise EngineCommandError(answer[0]["error"])
        return answer[0]["result"]

    def subscribe(self, callback: EventCallback) -> None:
        """Receive every event from now on (camera changes, recordings, errors, stats)."""
        self._callbacks.append(callback)
        if len(self._callbacks) == 1:
            self.call(cmd.Subscribe())

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the reader thread) once the connection ends, however it
        ends: the engine's exit or death, or close()."""
        self._on_close.append(callback)
        if self._closed.is_set() and not self._reader.is_alive():
            callback()

    @property
    def connected(self) -> bool:
        return not self._closed.is_set()

    # --- commands: thin wrappers, for typed calls from Python -------------------------

    def ping(self) -> dict[str, Any]:
        return self.call(cmd.Ping())

    def status(self) -> dict[str, Any]:
        return self.call(cmd.Status())

    def rings(self) -> list[dict[str, Any]]:
        """Ring name and geometry per running camera, for a display to attach to."""
        return self.call(cmd.Rings())

    def properties(self, camera: str) -> list[dict[str, Any]]:
        return self.call(cmd.Properties(camera=camera))

    def record(
        self, output: str | None = None, codec: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        return self.call(cmd.Record(output=output, codec=codec, name=name))

    def pause(self) -> dict[str, Any]:
        return self.call(cmd.Pause())

    def resume(self) -> dict[str, Any]:
        return self.call(cmd.Resume())

    def freeze(self) -> dict[str, Any]:
        return self.call(cmd.Freeze())

    def unfreeze(self) -> dict[str, Any]:
        return self.call(cmd.Unfreeze())

    def stop(self, wait: bool = True) -> dict[str, Any]:
        """Stop recording; with wait, return once the final files are assembled."""
        return self.call(cmd.Stop(wait=wait))

    def export(self, folder: str | Path, to: str, output: str | Path | None = None
               ) -> dict[str, Any]:
        """Start exporting a finished recording; export_progress and export_finished
        events follow (subscribe to see them)."""
        return self.call(cmd.Export(folder=str(folder), to=to,
                                    output=None if output is None else str(output)))

    def add_camera(self, source: str, **options: Any) -> dict[str, Any]:
        return self.call(cmd.AddCamera(source=source, **options))

    def remove_camera(self, camera: str) -> dict[str, Any]:
        return self.call(cmd.RemoveCamera(camera=camera))

    def start_camera(self, camera: str) -> dict[str, Any]:
        return self.call(cmd.StartCamera(camera=camera))

    def stop_camera(self, camera: str) -> dict[str, Any]:
        return self.call(cmd.StopCamera(camera=camera))

    def set(self, camera: str, **changes: Any) -> dict[str, Any]:
        """Apply settings; returns the settings in effect, or raises with the reason."""
        return self.call(cmd.Set(camera=camera, changes=changes))

    def load_rig(self, path: str | Path) -> dict[str, Any]:
        return self.call(cmd.LoadRig(path=str(path)))

    def save_rig(self, path: str | Path | None = None) -> dict[str, Any]:
        """Save the rig to path, by default the file it was loaded from."""
        return self.call(cmd.SaveRig(path=None if path is None else str(path)))

    def shutdown(self) -> None:
        """Ask the engine to finalize any recording and exit."""
        self.call(cmd.Shutdown())
