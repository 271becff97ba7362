"""Every malformed request to a real engine gets a specific answer, never "internal error",
and the engine goes on serving (hypothesis generates the requests; one engine serves all
of a test's examples: tests/engines.py's `engine` fixture)."""

from __future__ import annotations

import json
from multiprocessing.connection import Client
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.wire import framing
from engine.wire.commands import COMMANDS
from engine.wire.paths import key_path, socket_path

# Commands that end the engine or write where a generated path points are left out:
# what they do with good arguments is tested elsewhere.
LEFT_OUT = {"shutdown", "subscribe", "load_rig", "save_rig", "record"}
NAMES = sorted(set(COMMANDS.names()) - LEFT_OUT)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False), st.text(max_size=20))
CAMERAS = st.sampled_from(["left", "right"])  # the engine's own: deeper paths run
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(NAMES) | st.text(max_size=12))
    fields = list(COMMANDS.fields(name)) if name in NAMES else []
    keys = draw(st.lists(st.sampled_from(fields) | st.text(max_size=6), max_size=4, unique=True)
                if fields else st.lists(st.text(max_size=6), max_size=2, unique=True))
    args: Any = {key: draw(CAMERAS | values if key == "camera" else values) for key in keys}
    if draw(st.booleans()) and not keys:
        args = draw(values)
    request: dict[str, Any] = {"id": draw(st.integers(0, 2**31)), "cmd": name, "args": args}
    for key in draw(st.lists(st.sampled_from(["id", "cmd", "args"]), max_size=1)):
        request[key] = draw(values)
    return request


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=requests())
def test_a_malformed_request_gets_a_specific_answer(engine, request):
    conn = Client(str(socket_path(engine.folder)), family="AF_UNIX",
                  authkey=key_path(engine.folder).read_bytes())
    try:
        conn.send_bytes(framing.encode(request))
        answer = json.loads(conn.recv_bytes())
    finally:
        conn.close()
    assert "internal error" not in str(answer.get("error")), (request, answer)


def test_json_nested_200000_deep_gets_a_specific_answer(engine):
    conn = Client(str(socket_path(engine.folder)), family="AF_UNIX",
                  authkey=key_path(engine.folder).read_bytes())
    try:
        conn.send_bytes(b'{"id": 1, "cmd": "ping", "args": ' + b"[" * 200_000 + b"]" * 200_000
                        + b"}")
        answer = json.loads(conn.recv_bytes())
    finally:
        conn.close()
    assert not answer["ok"] and answer["error"] == "not a JSON message: nested too deep"
    with engine.client() as client:
        assert client.ping()
