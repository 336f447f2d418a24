"""The 2026-07-28 revision on the HTTP front: stateless requests carrying their own `_meta` envelope.

Every request passes the header ladder (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`
against the body) before anything reaches the pipeline; errors carry the spec's codes and HTTP statuses.
A request is answered as JSON, or as an SSE stream when progress or log lines come first; the client
closing that stream cancels the call. `subscriptions/listen` holds a stream of list-change and
resource-update notifications, aggregated over every upstream and every process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, validate_mcp_param_headers
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ..auth import Principal
from ..calls import Call
from ..catalog.catalog import Catalog
from ..conversation import keepalive
from ..conversation.answer import Reply, answer
from ..conversation.era import modern_client
from ..conversation.listen import Listen
from ..conversation.message import Notification, Request
from ..jsonrpc import HEADER_MISMATCH, INTERNAL_ERROR, INVALID_REQUEST, McpError
from ..pipeline import Pipeline
from ..upstream.watches import ResourceWatches
from ..version import META_CLIENT_INFO, META_VERSION
from . import sse
from .responses import ResponseStream, send_accepted, send_error, wait_disconnect

log = logging.getLogger("mcp_gateway.front")

_ROUTING_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_PARAM_HEADER_PREFIX = b"mcp-param-"
# A call still running after this long gets a watcher that cancels it when the client hangs up;
# quick calls never pay for one.
_DISCONNECT_WATCH_DELAY = 0.05

Finish = Callable[[ResponseStream, Reply, bool], Awaitable[None]]


def is_handshake_version(value: bytes | None) -> bool:
    return value is not None and value.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS


class ModernFront:
    def __init__(
        self,
        pipeline: Pipeline,
        catalog: Catalog,
        watches: ResourceWatches,
        draining: asyncio.Event,
        lenient_version_header: bool,
        finish: Finish,
    ) -> None:
        self.pipeline = pipeline
        self._catalog = catalog
        self._watches = watches
        self.draining = draining
        self.lenient = lenient_version_header
        self._finish = finish
        self._listens: set[Listen] = set()
        self._warned_lenient: set[str] = set()

    async def post(
        self,
        raw_headers: list[tuple[bytes, bytes]],
        headers: dict[bytes, bytes],
        message: Request | Notification,
        receive: Any,
        send: Any,
        principal: Principal,
    ) -> None:
        request_id = message.id if isinstance(message, Request) else None
        params = message.params
        routing, param_headers, duplicated = _scan_headers(raw_headers)
        if duplicated is not None:
            await _reject(send, request_id, McpError(HEADER_MISMATCH, f"{duplicated} header appears more than once"))
            return
        meta = params.get("_meta")
        if self.lenient and isinstance(meta, dict) and is_handshake_version(headers.get(b"mcp-protocol-version")):
            # Claude connectors: a 2026-07-28 body under a 2025-11-25 header (anthropics/claude-code#93290).
            self._warn_lenient(meta)
            routing["mcp-protocol-version"] = meta.get(META_VERSION)  # type: ignore[assignment]
        try:
            client = modern_client(message.method, params, routing)
        except McpError as refused:
            await _reject(send, request_id, refused)
            return
        if isinstance(message, Notification):
            await send_accepted(send)  # 2026-07-28 defines no client-to-server notifications over HTTP
            return
        if self.draining.is_set():
            await send_error(send, 503, request_id, McpError(INTERNAL_ERROR, "gateway is shutting down"))
            return
        if message.method == "tools/call":
            mismatch = self._param_header_mismatch(param_headers, params)
            if mismatch is not None:
                await _reject(send, request_id, mismatch)
                return
        if message.method == "subscriptions/listen" and b"text/event-stream" not in headers.get(b"accept", b""):
            await send_error(send, 406, request_id, McpError(INVALID_REQUEST, "Accept must include text/event-stream"))
            return
        stream = ResponseStream(send, [], None)
        call = Call(message.method, params, client, principal, request_id, stream, headers)
        reply = await self._run_cancellable(call, receive)
        if reply is None:
            return  # the client hung up: cancelled
        if message.method == "subscriptions/listen" and reply.ok:
            await self._listen(call, reply, receive, send)
            return
        await self._finish(stream, reply, True)

    def _param_header_mismatch(self, present: dict[str, str] | None, params: dict[str, Any]) -> McpError | None:
        name = params.get("name")
        entry = self._catalog.snapshot.lookup("tools", name) if isinstance(name, str) else None
        if entry is None or (entry.param_headers is None and not present):
            return None
        arguments = params.get("arguments")
        rejection = validate_mcp_param_headers(
            entry.definition.get("inputSchema"), arguments if isinstance(arguments, dict) else {}, present or {}
        )
        return McpError(rejection.code, rejection.message) if rejection is not None else None

    async def _run_cancellable(self, call: Call, receive: Any) -> Reply | None:
        """Serve `call`; if the client disconnects first, cancel it and return None."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        watcher: list[asyncio.Task[None]] = []
        hung_up = False

        async def watch() -> None:
            nonlocal hung_up
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    hung_up = True
                    task.cancel()
                    return

        timer = loop.call_later(_DISCONNECT_WATCH_DELAY, lambda: watcher.append(loop.create_task(watch())))
        try:
            return await answer(self.pipeline, call)
        except asyncio.CancelledError:
            if hung_up:
                task.uncancel()
                return None
            raise
        finally:
            timer.cancel()
            if watcher:
                watcher[0].cancel()

    # -- subscriptions/listen ------------------------------------------------------------------------

    async def _listen(self, call: Call, reply: Reply, receive: Any, send: Any) -> None:
        assert reply.result.payload is not None
        listen = Listen(call.request_id, reply.result.payload["notifications"])
        self._listens.add(listen)
        disconnected = asyncio.create_task(wait_disconnect(receive, listen.queue))

        async def event(data: bytes) -> None:
            await send({"type": "http.response.body", "body": sse.event(data), "more_body": True})

        try:
            await send({"type": "http.response.start", "status": 200, "headers": sse.SSE_HEADERS})
            await event(listen.acknowledgement())
            if not self.draining.is_set():
                await keepalive.pump(listen.queue, event, sse.KEEPALIVE)
            if self.draining.is_set():
                await send({"type": "http.response.body", "body": sse.event(listen.ending()), "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            disconnected.cancel()
            self._listens.discard(listen)
            await listen.close(self._watches)

    def fan_out(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        for listen in self._listens:
            listen.offer(method, params, uri)

    def stop_streams(self) -> None:
        for listen in self._listens:
            keepalive.end(listen.queue)

    def _warn_lenient(self, meta: dict[str, Any]) -> None:
        info = meta.get(META_CLIENT_INFO)
        name = str(info.get("name"))[:64] if isinstance(info, dict) else "unknown client"
        if name not in self._warned_lenient and len(self._warned_lenient) < 100:
            self._warned_lenient.add(name)
            log.info(
                "%s sends 2026-07-28 requests under a handshake-era MCP-Protocol-Version header; served as "
                "2026-07-28 (server.lenient_version_header)",
                name,
            )


def _scan_headers(
    raw_headers: list[tuple[bytes, bytes]],
) -> tuple[dict[str, str], dict[str, str] | None, str | None]:
    """One pass over the request headers: the routing headers, the `Mcp-Param-*` headers, and the name of
    a routing or parameter header sent twice (first-copy and last-copy readers would disagree). Values
    are compared without optional whitespace (RFC 9110 §5.5)."""
    routing: dict[str, str] = {}
    params: dict[str, str] | None = None
    for name, value in raw_headers:
        if name in _ROUTING_HEADERS:
            key = name.decode()
            if key in routing:
                return routing, params, key
            routing[key] = value.decode("latin-1").strip(" \t")
        elif name.startswith(_PARAM_HEADER_PREFIX):
            key = name.decode("latin-1")
            if params is None:
                params = {}
            elif key in params:
                return routing, params, key[:64]
            params[key] = value.decode("latin-1").strip(" \t")
    return routing, params, None


async def _reject(send: Any, request_id: Any, error: McpError) -> None:
    await send_error(send, ERROR_CODE_HTTP_STATUS.get(error.code, 400), request_id, error)
