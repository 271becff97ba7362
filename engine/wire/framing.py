"""The control protocol: authenticated, length-framed JSON messages over a Unix socket.

Authentication is multiprocessing.connection's HMAC challenge with a random key
kept in a 0600 file; after it, every message is one JSON object (never pickle,
so a peer can only ever send data). Requests are {"id", "cmd", "args"}; answers
are {"id", "ok", "result" | "error"}; events are {"event", ...} without an id. What
they may hold is declared in engine.wire.commands and engine.wire.events.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import struct
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

MAX_MESSAGE = 1 << 20
HANDSHAKE_TIMEOUT_S = 3.0


def create_key(path: Path) -> bytes:
    """A fresh random key, written 0600 so only this user can talk to the engine."""
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    os.chmod(path, 0o600)
    return key


def read_key(path: Path) -> bytes:
    return path.read_bytes()


def _receive_timeout(sock: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO also bounds the raw reads Connection makes on the descriptor."""
    whole = int(seconds)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVTIMEO,
        struct.pack("ll", whole, int((seconds - whole) * 1e6)),
    )


def accept_authenticated(sock: socket.socket, key: bytes) -> Connection:
    """Run the server side of the handshake with a time limit; raise on any failure.

    A peer that connects and says nothing, or says garbage, costs one thread for
    at most HANDSHAKE_TIMEOUT_S and never reaches the engine.
    """
    _receive_timeout(sock, HANDSHAKE_TIMEOUT_S)
    _send_timeout(sock, HANDSHAKE_TIMEOUT_S)
    conn = Connection(sock.detach())
    try:
        deliver_challenge(conn, key)
        answer_challenge(conn, key)
    except BaseException:
        conn.close()
        raise
    return conn


def _send_timeout(sock: socket.socket, seconds: float) -> None:
    whole = int(seconds)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDTIMEO,
        struct.pack("ll", whole, int((seconds - whole) * 1e6)),
    )


def clear_receive_timeout(conn: Connection) -> None:
    """After the handshake a client may stay quiet for as long as it likes."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        _receive_timeout(sock, 0)
    finally:
        sock.close()


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode()
