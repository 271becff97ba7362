"""The control socket: accepts clients, runs their commands, fans events out to them.

Each client gets a reader thread (authenticate, then one command at a time) and a
bounded outbox drained by a writer thread. A client that stops reading is dropped
when its outbox fills, so no client can slow the engine, let alone a recording.

This is where everything leaves the engine, so every answer, error and event passes
`mask_secrets` here, once: no camera password reaches a client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import socket
import threading
from collections.abc import Callable, Mapping
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from engine.service.rig_service import EXPECTED_ERRORS, RigService
from engine.sources import PASSWORD_MASK
from engine.wire import framing
from engine.wire.commands import Command, RequestError, Shutdown, Subscribe, parse_request
from engine.wire.events import EVENTS, AssemblyProgress, Device, Event, ExportProgress, Stats
from engine.wire.paths import key_path, socket_path
from engine.wire.registry import WireError

log = logging.getLogger("engine.server")

OUTBOX_SIZE = 256
# Events that carry figures (every second, or as a job advances), not a change of state:
# the only ones the log leaves out, so it holds one line per change and none per frame.
UNLOGGED_EVENTS = (Stats, Device, AssemblyProgress, ExportProgress)

# The password of a URL in free text, for what the known sources do not cover (a camera
# being added, or one removed since): scheme://user:PASSWORD@
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):[^\s/?#@]*@")


def mask_secrets(value: Any, known: Mapping[str, str]) -> Any:
    """value (a JSON-able message) with every camera password masked: each known source
    (raw -> masked) replaced, then any other URL's password."""
    if isinstance(value, str):
        for raw, masked in known.items():
            value = value.replace(raw, masked)
        return _URL_PASSWORD.sub(rf"\1:{PASSWORD_MASK}@", value)
    if isinstance(value, dict):
        return {key: mask_secrets(item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item, known) for item in value]
    return value


class EngineAlreadyRunning(RuntimeError):
    """Another engine answers on this runtime folder's socket."""


class _Client:
    def __init__(self, conn: Connection, number: int) -> None:
        self.conn = conn
        self.number = number
        self.outbox: queue.Queue[bytes | None] = queue.Queue(OUTBOX_SIZE)
        self.subscribed = False
        self.closed = threading.Event()

    def post(self, message: dict[str, Any]) -> bool:
        """Queue a message; False when the client is not keeping up (it gets dropped)."""
        try:
            self.outbox.put_nowait(framing.encode(message))
            return True
        except queue.Full:
            return False

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            with contextlib.suppress(queue.Full):
                self.outbox.put_nowait(None)
            with contextlib.suppress(OSError):
                self.conn.close()


class EngineServer:
    """Serves one RigService on the runtime folder's Unix socket."""

    def __init__(self, service_factory: Callable[[Callable[[Event], None]], RigService],
                 folder: Path) -> None:
        self.folder = folder
        self._socket_path = socket_path(folder)
        self._clients: set[_Client] = set()
        self._clients_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._numbers = iter(range(1, 1 << 62))
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self.shutdown_requested = threading.Event()
        self._claim_socket()
        self._key = framing.create_key(key_path(folder))
        self.service: RigService = service_factory(self.broadcast)

    def _claim_socket(self) -> None:
        """Refuse to start beside a live engine; remove the socket a dead one left."""
        if self._socket_path.exists():
            try:
                Client(str(self._socket_path), family="AF_UNIX",
                       authkey=framing.read_key(key_path(self.folder))).close()
            except (ConnectionRefusedError, FileNotFoundError, AuthenticationError, OSError,
                    EOFError):
                self._socket_path.unlink(missing_ok=True)
            else:
                raise EngineAlreadyRunning(f"an engine is already running at {self._socket_path}")

    def serve(self) -> None:
        """Listen until shutdown is requested (by a client or by the caller)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is created 0600
        try:
            listener.bind(str(self._socket_path))
        finally:
            os.umask(old_umask)
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        self.service.start()
        log.info("engine listening on %s", self._socket_path)
        try:
            while not self.shutdown_requested.is_set():
                try:
                    peer, _ = listener.accept()
                except TimeoutError:
                    continue
                peer.settimeout(None)
                threading.Thread(target=self._serve_client, args=(peer,), daemon=True).start()
        finally:
            listener.close()
            self._socket_path.unlink(missing_ok=True)
            key_path(self.folder).unlink(missing_ok=True)  # a clean exit leaves no secret
            with self._clients_lock:
                clients = list(self._clients)
            for client in clients:
                client.close()
            self.service.close()

    def _outgoing(self, message: dict[str, Any]) -> dict[str, Any]:
        masked: dict[str, Any] = mask_secrets(message, self.service.secrets())
        return masked

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Also hand every event, as a subscribed client gets it, to listener (the rig's
        broker link); it must not block."""
        self._listeners.append(listener)

    def broadcast(self, event: Event) -> None:
        """Log an event (see UNLOGGED_EVENTS) and send it to every subscribed client and
        listener; drop the clients that lag."""
        with self._clients_lock:
            clients = [c for c in self._clients if c.subscribed]
        logged = not isinstance(event, UNLOGGED_EVENTS)
        if not clients and not logged and not self._listeners:
            return
        message = self._outgoing(EVENTS.to_wire(event))
        for listener in self._listeners:
            listener(message)
        if logged:
            fields = {key: value for key, value in message.items() if key not in ("event", "time")}
            log.info("%s %s", event.NAME, json.dumps(fields, default=str))
        for client in clients:
            if not client.post(message):
                log.warning("client %d is not reading its events; disconnecting it", client.number)
                client.close()

    # --- one client -------------------------------------------------------------------

    def _serve_client(self, peer: socket.socket) -> None:
        try:
            conn = framing.accept_authenticated(peer, self._key)
            framing.clear_receive_timeout(conn)
        except (AuthenticationError, OSError, EOFError, ValueError) as exc:
            log.warning("refused a connection: %s", exc or type(exc).__name__)
            with contextlib.suppress(OSError):
                peer.close()
            return
        client = _Client(conn, next(self._numbers))
        with self._clients_lock:
            self._clients.add(client)
        writer = threading.Thread(target=self._write_to, args=(client,), daemon=True)
        writer.start()
        try:
            while not client.closed.is_set():
                try:
                    data = conn.recv_bytes(framing.MAX_MESSAGE)
                except (EOFError, OSError):
                    break  # gone, or sent a message over the size limit
                answer = self._outgoing(self._answer(client, data))
                if not client.post(answer):
                    break
        finally:
            with self._clients_lock:
                self._clients.discard(client)
            client.close()

    def _write_to(self, client: _Client) -> None:
        while True:
            data = client.outbox.get()
            if data is None:
                return
            try:
                client.conn.send_bytes(data)
            except OSError:
                client.close()
                return

    def answer(self, data: bytes) -> dict[str, Any]:
        """The answer to a request that came by another way than the socket (the rig's
        broker), secrets masked; `subscribe` is the socket's alone."""
        return self._outgoing(self._answer(None, data))

    def _answer(self, client: _Client | None, data: bytes) -> dict[str, Any]:
        request_id = None
        try:
            request_id, command = parse_request(data)
            return {"id": request_id, "ok": True, "result": self._run(client, command)}
        except RequestError as exc:
            return {"id": exc.request_id, "ok": False, "error": str(exc)}
        except EXPECTED_ERRORS as exc:  # WireError too (a ValueError): a malformed request
            return {"id": request_id, "ok": False, "error": str(exc)}
        except Exception as exc:  # a bug must not take the engine down with it
            log.exception("command failed")
            return {"id": request_id, "ok": False,
                    "error": f"internal error: {type(exc).__name__}: {exc}"}

    def _run(self, client: _Client | None, command: Command) -> Any:
        """The server's own commands, or the RigService method of the command's name."""
        if isinstance(command, Subscribe):
            if client is None:
                raise WireError("subscribe is for the control socket; a node's events go "
                                "to its events subject")
            client.subscribed = True
            return {"subscribed": True}
        if isinstance(command, Shutdown):
            self.shutdown_requested.set()
            return {"shutting_down": True}
        return getattr(self.service, command.NAME)(**command.args())
