"""The coordinator's side of a multi-machine rig: it sees every node on the broker,
measures their clocks and sends them commands (`recorder-engine rig ...`)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from engine import machine_clock
from engine.nodes.broker import BrokerError, BrokerLink
from engine.nodes.clock import ClockEstimate, measure_offset
from engine.wire.commands import COMMANDS, Command
from engine.wire.nodes import (
    STATUS_INTERVAL_S,
    ClockProbe,
    ClockReading,
    NodeStatus,
    check_name,
    decode,
    encode,
    node_of,
    subject,
)
from engine.wire.registry import WireError

CLOCK_PROBES = 24
CLOCK_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 30.0


class NodeCommandError(RuntimeError):
    """A node answered a command with an error; the text names the node."""


class RigCoordinator:
    """Nodes of rig `rig` as their announcements show them (the newest of each)."""

    def __init__(self, link: BrokerLink, rig: str = "rig") -> None:
        self.rig = check_name("rig", rig)
        self._link = link
        self._nodes: dict[str, tuple[float, NodeStatus]] = {}  # node -> (heard at, status)
        self._heard = threading.Condition()
        # Nodes whose announcements this coordinator cannot read, and why.
        self.unreadable: dict[str, str] = {}
        link.listen(subject(self.rig, "*", "status"), self._status)

    def _status(self, subject_name: str, data: bytes) -> None:
        try:
            status = decode(data)
        except WireError as exc:  # a node of another version, most likely: say so
            self.unreadable[node_of(subject_name)] = str(exc)
            return
        if isinstance(status, NodeStatus) and status.node == node_of(subject_name):
            with self._heard:
                self._nodes[status.node] = (time.monotonic(), status)
                self._heard.notify_all()

    def nodes(self, wait_s: float = 2 * STATUS_INTERVAL_S, expect: int = 0
              ) -> dict[str, NodeStatus]:
        """The nodes heard within the last 3 status intervals, after waiting wait_s for
        them to announce (less once `expect` nodes are heard)."""
        deadline = time.monotonic() + wait_s
        with self._heard:
            while not (expect and len(self._live()) >= expect):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._heard.wait(remaining)
            return self._live()

    def _live(self) -> dict[str, NodeStatus]:
        horizon = time.monotonic() - 3 * STATUS_INTERVAL_S
        return {name: status for name, (heard, status) in sorted(self._nodes.items())
                if heard >= horizon}

    def clock(self, node: str, probes: int = CLOCK_PROBES) -> ClockEstimate:
        """The node's clock offset from this machine's monotonic clock."""
        def ask(sent_ns: int) -> int:
            reply = decode(self._link.request(subject(self.rig, node, "clock"),
                                              encode(ClockProbe(sent_ns=sent_ns)),
                                              CLOCK_TIMEOUT_S))
            if not isinstance(reply, ClockReading) or reply.sent_ns != sent_ns:
                raise BrokerError(f"node {node} answered a clock probe with something else")
            return reply.node_ns

        return measure_offset(ask, probes, machine_clock.now_ns)

    def command(self, node: str, command: Command, timeout_s: float = COMMAND_TIMEOUT_S
                ) -> Any:
        """Run a command on a node as its control socket would; its result, or
        NodeCommandError with the node's error."""
        request = {"id": 1, "cmd": command.NAME, "args": command.args()}
        data = self._link.request(subject(self.rig, node, "command"),
                                  json.dumps(request).encode(), timeout_s)
        answer = json.loads(data)
        if not answer.get("ok"):
            raise NodeCommandError(f"node {node}: {answer.get('error')}")
        return answer.get("result")

    def command_by_name(self, node: str, name: str, **args: Any) -> Any:
        """command() with the command given by its wire name and arguments."""
        return self.command(node, COMMANDS.from_wire(args, name))
