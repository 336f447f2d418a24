"""The transport contract every upstream connector implements, and shared pieces for stream transports."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..jsonrpc import UPSTREAM_ERROR, McpError, is_response, valid_id
from .limits import DEFAULT_MAX_MESSAGE_BYTES, response_id, too_large
from .relay import Relay
from .throttled_log import ThrottledLog

log = logging.getLogger("mcp_gateway.upstream")

# Called for every message the upstream sends that is not the answer to an exchange: notifications and
# server-to-client requests. `related` is the relay of the exchange whose stream carried it, when known.
IncomingHandler = Callable[[dict[str, Any], "Relay | None"], Awaitable[None]]


class UpstreamGone(McpError):
    """The upstream connection broke; the pool reconnects in the background."""

    def __init__(self, upstream: str, detail: str) -> None:
        super().__init__(UPSTREAM_ERROR, f"upstream '{upstream}' is unavailable: {detail}")
        self.upstream = upstream


class Transport(ABC):
    """Moves JSON-RPC messages to and from one upstream server."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.on_incoming: IncomingHandler | None = None
        # Set when the connection is lost for good; the pool watches it to reconnect.
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.warnings = ThrottledLog(log)

    @abstractmethod
    async def start(self) -> None:
        """Open the connection (spawn the process, open the stream)."""

    @abstractmethod
    async def exchange(
        self,
        message: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        related: Relay | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Send a request and return the JSON-RPC response message for it. `tenant` is whose call it is, for
        fair sharing of the connections (None: the gateway's own)."""

    @abstractmethod
    async def send(self, message: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        """Send a notification or a response; no answer is expected."""

    @abstractmethod
    async def aclose(self) -> None: ...

    def set_session_headers(self, headers: dict[str, str]) -> None:  # noqa: B027 - optional hook
        """Headers to send on every later request (HTTP only: session id, protocol version)."""

    def set_auth_headers(self, headers: dict[str, str]) -> None:  # noqa: B027 - optional hook
        """The gateway's own credential for this upstream (HTTP only), replacing the previous one."""

    async def start_listening(self) -> None:  # noqa: B027 - optional hook
        """Open the server-to-client channel for unsolicited messages (HTTP GET stream), if any."""

    def mark_lost(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()


class PendingRequests:
    """Futures of requests awaiting their response on a shared message stream (stdio, HTTP+SSE)."""

    __slots__ = ("_futures", "_upstream")

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self._futures: dict[Any, asyncio.Future[dict[str, Any]]] = {}

    def expect(self, request_id: Any) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return future

    def forget(self, request_id: Any) -> None:
        self._futures.pop(request_id, None)

    def fail(self, request_id: Any, error: Exception) -> bool:
        """Fail one waiting request (its answer could not be read); False if nothing waits on that id."""
        future = self._futures.pop(request_id, None)
        if future is None or future.done():
            return False
        future.set_exception(error)
        return True

    def resolve(self, message: dict[str, Any]) -> bool:
        future = self._futures.pop(message.get("id"), None)
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    def fail_all(self, detail: str) -> None:
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(UpstreamGone(self._upstream, detail))


class StreamTransport(Transport):
    """A transport where every message shares one stream and answers are matched by id (stdio, SSE)."""

    def __init__(self, name: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        super().__init__(name)
        self._pending = PendingRequests(name)
        self._max_message = max_message_bytes

    @abstractmethod
    async def _write(self, message: dict[str, Any]) -> None: ...

    async def _deliver(self, raw: bytes | str) -> None:
        """Route one message read from the stream: an answer to its waiter, the rest to `on_incoming`.

        What cannot be a JSON-RPC message is dropped with a (throttled) warning and the stream goes on: the
        reader is shared by every call, so one bad line must never end it (and restart the upstream)."""
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.warnings.warning("not-json", "upstream %s sent a message that is not JSON; dropped", self.name)
            return
        if not isinstance(message, dict):
            self.warnings.warning("not-object", "upstream %s sent a message that is not an object; dropped", self.name)
            return
        # JSON-RPC 2.0 §4: an id is a string or a number (MCP also forbids null in requests); only an error
        # answer to a request the server could not read carries a null id. Anything else (arrays, objects)
        # could not be matched to a request, nor used as a key.
        if "id" in message and not valid_id(message["id"]) and not (message["id"] is None and "method" not in message):
            self.warnings.warning(
                "bad-id",
                "upstream %s sent a message whose id is a %s, not a string or number; dropped",
                self.name,
                type(message["id"]).__name__,
            )
            return
        if is_response(message):
            self._pending.resolve(message)
        elif self.on_incoming is not None:
            await self.on_incoming(message, None)

    def _skipped_too_large(self, head: bytes, tail: bytes) -> None:
        """A message past `max_message_bytes` was read to its end without being kept (`head` and `tail` are
        its first and last bytes): fail the call it answered; the stream and every other call go on."""
        error = too_large(self.name, self._max_message)
        request_id = response_id(head, tail)
        if request_id is not None and self._pending.fail(request_id, error):
            self.warnings.warning("too-large", "%s; the call it answered failed", error.message)
        else:
            self.warnings.warning("too-large", "%s; dropped (no waiting call could be told from it)", error.message)

    async def exchange(
        self,
        message: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        related: Relay | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        request_id = message["id"]
        future = self._pending.expect(request_id)
        try:
            await self._write(message)
            return await future
        finally:
            self._pending.forget(request_id)

    async def send(self, message: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        await self._write(message)
