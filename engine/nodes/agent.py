"""An engine as a node of a multi-machine rig: what `serve --node NAME --broker URL` adds.

The engine serves its control socket as always; the agent puts it on the broker too
(engine/wire/nodes.py names the subjects): it announces the node's status every
STATUS_INTERVAL_S, answers clock probes at once from the loop, runs commands that come on
its command subject exactly as the socket would (the same requests, the same answers,
secrets masked), and publishes the engine's events. Frames stay on the node; a
coordinator that watches gets small previews (engine/nodes/preview.py).

The broker is the node's link to the rig, not its reason to run: a broker that is down
when the node starts, or goes away later, leaves the engine serving and recording
locally while the agent keeps trying to reach it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from engine import __version__, machine_clock
from engine.nodes.broker import BrokerError, BrokerLink
from engine.nodes.preview import PreviewSender
from engine.service.server import EngineServer
from engine.wire.commands import Command, Rings, Status, request
from engine.wire.nodes import (
    STATUS_INTERVAL_S,
    ClockProbe,
    ClockReading,
    NodeStatus,
    check_name,
    decode,
    encode,
    health_of,
    subject,
)
from engine.wire.registry import WireError

log = logging.getLogger("engine.node")

RETRY_MAX_S = 10.0  # the longest wait between attempts to reach a broker that is down


class NodeAgent:
    """Puts `server` on the rig `rig` of the broker at `url` as node `node`."""

    def __init__(self, server: EngineServer, node: str, url: str, rig: str = "rig",
                 token: str | None = None) -> None:
        self.node = check_name("node", node)
        self.rig = check_name("rig", rig)
        self._server = server
        self._link = BrokerLink(url, name=f"recorder node {node}", token=token)
        self._stop = threading.Event()
        self._preview: PreviewSender | None = None
        self._thread = threading.Thread(target=self._run, name="node-agent", daemon=True)

    def start(self) -> None:
        """Reach the broker (now, or later: see the module) and announce the node."""
        self._thread.start()

    def _run(self) -> None:
        wait_s = 1.0
        while not self._stop.is_set():
            try:
                self._link.connect()
                break
            except BrokerError as exc:
                log.warning("node %s: %s; trying again in %.0f s", self.node, exc, wait_s)
            if self._stop.wait(wait_s):
                return
            wait_s = min(wait_s * 2, RETRY_MAX_S)
        self._link.answer_now(self._subject("clock"), self._clock_reading)
        self._link.serve(self._subject("command"), self._command)
        self._server.add_listener(self._event)
        self._preview = PreviewSender(self._link, self.rig, self.node, self._rings)
        log.info("node %s joined rig %r on the broker at %s", self.node, self.rig,
                 self._link.url)
        while True:
            self._link.publish(self._subject("status"), encode(self.status()))
            if self._stop.wait(STATUS_INTERVAL_S):
                return

    def _subject(self, channel: str) -> str:
        return subject(self.rig, self.node, channel)

    def status(self) -> NodeStatus:
        """The node's announcement, from its engine's status (secrets masked)."""
        status: dict[str, Any] = self._ask(Status()) or {}
        cameras = [{key: camera.get(key) for key in ("id", "source", "status", "size",
                                                      "target_fps", "fps", "frames", "dropped")}
                   for camera in status.get("cameras", [])]
        return NodeStatus(node=self.node, version=__version__, pid=os.getpid(),
                          rig=str((status.get("rig") or {}).get("name", "")),
                          state=str((status.get("engine") or {}).get("state", "unknown")),
                          cameras=cameras, recording=status.get("recording"),
                          clock_ns=machine_clock.now_ns(),
                          health=health_of(status.get("device") or {}))

    def _rings(self) -> list[dict[str, Any]]:
        return list(self._ask(Rings()) or [])

    def _ask(self, command: Command) -> Any:
        """The engine's answer to a command of the agent's own (None if it refused)."""
        return self._server.answer(json.dumps(request(0, command)).encode()).get("result")

    def _clock_reading(self, data: bytes) -> bytes:
        try:
            probe = decode(data)
        except WireError as exc:
            log.warning("node %s: a clock probe that is not one: %s", self.node, exc)
            return b"{}"
        if not isinstance(probe, ClockProbe):
            return b"{}"
        return encode(ClockReading(sent_ns=probe.sent_ns, node_ns=machine_clock.now_ns()))

    def _command(self, data: bytes) -> bytes:
        return json.dumps(self._server.answer(data)).encode()

    def _event(self, message: dict[str, Any]) -> None:
        self._link.publish(self._subject("events"), json.dumps(message).encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(RETRY_MAX_S)
        if self._preview is not None:
            self._preview.close()
        self._link.close()
