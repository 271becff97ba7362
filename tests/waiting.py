"""Waiting on a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import psutil

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout_s: float = 15.0,
    what: str = "the condition",
    *,
    step_s: float = 0.05,
) -> T:
    """Poll predicate until it returns something true and return that, so a test can wait
    for a value and use it; after timeout_s, fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(step_s)
    return value


def wait_listening(process: subprocess.Popen, port: int, what: str, timeout_s: float = 10) -> None:
    """Wait until process listens on the TCP port. Watching the socket, not connecting:
    a connection would use up a server that takes a single client. Serving a client on
    the port counts too: such a server stops listening once a client (a camera that was
    reconnecting) got there first."""
    serving = (psutil.CONN_LISTEN, psutil.CONN_ESTABLISHED)

    def listening() -> bool:
        assert process.poll() is None, f"{what} exited before listening on port {port}"
        return any(conn.status in serving and conn.laddr.port == port
                   for conn in psutil.Process(process.pid).net_connections("tcp"))

    wait_for(listening, timeout_s, f"{what} listening on port {port}")
