"""One connection to the rig's broker: NATS, through its own client (nats-py).

NATS rather than a protocol of our own: subjects, request/reply with timeouts, token or
user/password authentication, TLS and reconnecting are the broker's, tested by its
users; Debian packages its server (`nats-server`). nats-py is asyncio, so the link runs
an event loop on a thread of its own and the engine's threads call it with plain,
bounded calls. Handlers run on a worker pool, never on the loop: a command that takes
seconds (a take's start) does not hold up clock probes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

log = logging.getLogger("engine.broker")

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0
RECONNECT_WAIT_S = 1.0
_HANDLER_THREADS = 4


class BrokerError(RuntimeError):
    """The broker cannot be reached or refused us; the text says which and why."""


class BrokerLink:
    """A connection to the broker at `url` (nats://, tls://; credentials in the URL or
    as `token`). Once connected it reconnects on its own, for ever, and keeps its
    subscriptions: a broker restart costs the rig nothing but the messages of the gap."""

    def __init__(self, url: str, name: str, token: str | None = None) -> None:
        self.url = url
        self._name = name
        self._token = token
        self._client: Client | None = None
        self._closing = False
        self._last_error = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker",
                                        daemon=True)
        self._thread.start()
        self._handlers = ThreadPoolExecutor(_HANDLER_THREADS, thread_name_prefix="broker-handler")

    @property
    def connected(self) -> bool:
        client = self._client
        return client is not None and client.is_connected

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect, or raise BrokerError naming why not (nothing listening, refused
        credentials, no answer in time) within timeout_s. Nothing listening and refused
        credentials are said at once: a caller that waits for its broker tries again (a
        node's agent does), a command line answers now."""
        try:
            self._call(self._connect(timeout_s), timeout_s + 1.0)
        except TimeoutError:
            raise BrokerError(self._reason(f"no answer within {timeout_s:.0f} s")) from None
        except (nats.errors.Error, OSError) as exc:
            raise BrokerError(self._reason(str(exc))) from None

    def _reason(self, fallback: str) -> str:
        parts = urlsplit(self.url)
        where, port = parts.hostname or self.url, parts.port or 4222
        error = self._last_error or fallback
        if _refused_credentials(error):
            return (f"the broker at {where}:{port} refused this rig's credentials "
                    "(Authorization Violation): check the token or user and password")
        if "refused" in error.lower():
            return f"nothing answers at {where}:{port} (is the broker running?)"
        return f"cannot reach the broker at {where}:{port}: {error}"

    async def _connect(self, timeout_s: float) -> None:
        final = asyncio.Event()  # an answer no retry within timeout_s would change

        async def noted(error: Exception) -> None:
            # The broker closes the connection as it refuses credentials, and a retry can
            # meet that close (a reset) before the refusal: the refusal is the reason.
            if not _refused_credentials(self._last_error):
                self._last_error = ("connection refused"
                                    if isinstance(error, ConnectionRefusedError)
                                    else str(error) or type(error).__name__)
            if (_refused_credentials(self._last_error)
                    or isinstance(error, ConnectionRefusedError)):
                final.set()

        async def lost() -> None:
            if self._client is not None and not self._closing:  # not a first try, nor close()
                log.warning("lost the broker at %s; reconnecting", self.url)

        async def back() -> None:
            log.info("reconnected to the broker at %s", self.url)

        # nats-py's hints say int for the seconds it takes as float.
        options: dict[str, Any] = {"connect_timeout": min(2.0, timeout_s),
                                   "reconnect_time_wait": RECONNECT_WAIT_S}
        if self._token:
            options["token"] = self._token
        self._last_error = ""
        client = Client()
        connecting = asyncio.ensure_future(client.connect(
            self.url, name=self._name, allow_reconnect=True, max_reconnect_attempts=-1,
            error_cb=noted, disconnected_cb=lost, reconnected_cb=back, **options))
        # Say a final answer now, not after the timeout.
        given_up = asyncio.ensure_future(final.wait())
        await asyncio.wait((connecting, given_up), timeout=timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
        given_up.cancel()
        if connecting.done():
            connecting.result()  # raises what the connect raised
            self._client = client
            return
        connecting.cancel()
        await client.close()
        if final.is_set():
            raise BrokerError(self._reason(""))
        raise TimeoutError

    def publish(self, subject: str, data: bytes) -> None:
        """Send and forget (dropped while disconnected: status and events are refreshed)."""
        if self.connected:
            asyncio.run_coroutine_threadsafe(self._publish(subject, data), self._loop)

    async def _publish(self, subject: str, data: bytes) -> None:
        client = self._client
        if client is not None and client.is_connected:
            try:
                await client.publish(subject, data)
            except nats.errors.Error as exc:
                log.debug("publish to %s failed: %s", subject, exc)

    def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        """Send a request and wait for its one reply; BrokerError when nobody answers."""
        client = self._client
        if client is None:
            raise BrokerError("not connected to the broker")
        try:
            reply: Msg = self._call(client.request(subject, data, timeout=timeout_s),
                                    timeout_s + 1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            raise BrokerError(f"no answer on {subject} within {timeout_s:g} s") from None
        except nats.errors.NoRespondersError:
            raise BrokerError(f"nobody answers on {subject}") from None
        except nats.errors.Error as exc:
            raise BrokerError(f"{subject}: {exc}") from None
        return bytes(reply.data)

    def serve(self, subject: str, handler: Callable[[bytes], bytes]) -> None:
        """Answer every request on subject with handler(data), run on a worker thread."""
        async def answer(message: Msg) -> None:
            reply = await self._loop.run_in_executor(self._handlers, handler, message.data)
            if message.reply:
                await message.respond(reply)

        self._subscribe(subject, answer)

    def answer_now(self, subject: str, handler: Callable[[bytes], bytes]) -> None:
        """Answer every request on subject with handler(data) on the loop itself: for
        answers that must leave at once (a clock reading) and never block."""
        async def answer(message: Msg) -> None:
            if message.reply:
                await message.respond(handler(message.data))

        self._subscribe(subject, answer)

    def listen(self, subject: str, handler: Callable[[str, bytes], None]) -> None:
        """Call handler(subject, data) for every message on subject (wildcards allowed)."""
        async def heard(message: Msg) -> None:
            handler(message.subject, bytes(message.data))

        self._subscribe(subject, heard)

    def _subscribe(self, subject: str, callback: Callable[[Msg], Coroutine[Any, Any, None]]
                   ) -> None:
        client = self._client
        if client is None:
            raise BrokerError("not connected to the broker")
        self._call(client.subscribe(subject, cb=callback), CONNECT_TIMEOUT_S)

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def close(self) -> None:
        """Flush, disconnect and end the loop's thread."""
        self._closing = True
        client = self._client
        if client is not None:
            try:
                self._call(client.drain(), CONNECT_TIMEOUT_S)
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                log.debug("closing the broker link: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONNECT_TIMEOUT_S)
        self._handlers.shutdown(wait=False, cancel_futures=True)


def _refused_credentials(error: str) -> bool:
    """The broker's answer to a wrong token or user (NATS: -ERR 'Authorization Violation')."""
    return "authorization" in error.lower()
