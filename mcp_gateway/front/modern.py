"""The 2026-07-28 revision on the HTTP front: stateless requests carrying their own `_meta` envelope.

Every request passes the header ladder (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`,
`Mcp-Param-*` against the body) before anything reaches the core; errors carry the spec's codes and
HTTP statuses. A request is answered as JSON, or as an SSE stream when progress or log lines come first;
the client closing that stream cancels the call. `subscriptions/listen` holds a stream of list-change
and resource-update notifications, aggregated over every upstream and every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    classify_inbound_request,
    validate_mcp_param_headers,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ..auth import Principal
from ..core.call import Call, ClientContext
from ..core.gateway import SUPPORTED_VERSIONS, Gateway
from ..jsonrpc import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    UNSUPPORTED_PROTOCOL_VERSION,
    McpError,
)
from ..version import META_CAPABILITIES, META_CLIENT_INFO, META_SUBSCRIPTION, META_VERSION, MODERN_VERSION
from . import sse
from .answer import answer
from .responses import ResponseStream, send_accepted, send_error, wait_disconnect

log = logging.getLogger("mcp_gateway.front")

_MODERN_VERSIONS = [MODERN_VERSION]
_ROUTING_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_PARAM_HEADER_PREFIX = b"mcp-param-"
# A call still running after this long gets a watcher that cancels it when the client hangs up;
# quick calls never pay for one.
_DISCONNECT_WATCH_DELAY = 0.05
_KEEPALIVE_SECONDS = 15.0
_LISTEN_FLAGS = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}


def is_handshake_version(value: bytes | None) -> bool:
    return value is not None and value.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS


class Listen:
    """One `subscriptions/listen` stream: its filter and its queue of encoded notifications."""

    __slots__ = ("honored", "methods", "queue", "subscription_id", "uris")

    def __init__(self, subscription_id: Any, methods: set[str], uris: set[str], honored: dict[str, Any]) -> None:
        self.subscription_id = subscription_id
        self.methods = methods
        self.uris = uris
        self.honored = honored
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)

    @classmethod
    async def open(cls, gateway: Gateway, request_id: Any, params: dict[str, Any]) -> Listen:
        """The listen a request asks for: the subset the gateway honours, its resource URIs watched."""
        wanted = params.get("notifications")
        if not isinstance(wanted, dict):
            raise McpError(INVALID_PARAMS, "notifications must be an object")
        honored: dict[str, Any] = {}
        methods: set[str] = set()
        for flag, method in _LISTEN_FLAGS.items():
            if wanted.get(flag) is True:
                honored[flag] = True
                methods.add(method)
        uris: set[str] = set()
        requested_uris = wanted.get("resourceSubscriptions")
        if isinstance(requested_uris, list):
            for uri in requested_uris:
                if isinstance(uri, str) and uri not in uris:
                    try:
                        await gateway.watches.watch(uri)
                    except McpError:
                        continue
                    uris.add(uri)
            honored["resourceSubscriptions"] = sorted(uris)
        return cls(request_id, methods, uris, honored)

    def acknowledgement(self) -> bytes:
        params = {"_meta": {META_SUBSCRIPTION: self.subscription_id}, "notifications": self.honored}
        return orjson.dumps({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": params})

    async def close(self, gateway: Gateway) -> None:
        for uri in self.uris:
            await gateway.watches.unwatch(uri)

    def offer(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        if uri is not None:
            if uri not in self.uris:
                return
        elif method not in self.methods:
            return
        meta = {**(params.get("_meta") or {}), META_SUBSCRIPTION: self.subscription_id}
        data = orjson.dumps({"jsonrpc": "2.0", "method": method, "params": {**params, "_meta": meta}})
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("a client's listen stream is full; dropped %s", method)


class ModernFront:
    def __init__(self, gateway: Gateway, draining: asyncio.Event, lenient_version_header: bool) -> None:
        self.gateway = gateway
        self.draining = draining
        self.lenient = lenient_version_header
        self._listens: set[Listen] = set()
        self._warned_lenient: set[str] = set()

    async def post(
        self,
        raw_headers: list[tuple[bytes, bytes]],
        headers: dict[bytes, bytes],
        message: dict[str, Any],
        params: dict[str, Any],
        receive: Any,
        send: Any,
        principal: Principal,
    ) -> None:
        method: str = message["method"]
        request_id = message.get("id")
        routing, param_headers, duplicated = _scan_headers(raw_headers)
        if duplicated is not None:
            await _reject(send, request_id, McpError(HEADER_MISMATCH, f"{duplicated} header appears more than once"))
            return
        meta = params.get("_meta")
        if self.lenient and isinstance(meta, dict) and is_handshake_version(headers.get(b"mcp-protocol-version")):
            # Claude connectors: a 2026-07-28 body under a 2025-11-25 header (anthropics/claude-code#93290).
            self._warn_lenient(meta)
            routing["mcp-protocol-version"] = meta.get(META_VERSION)  # type: ignore[assignment]
        rejection = classify_inbound_request(message, headers=routing, supported_modern_versions=_MODERN_VERSIONS)
        if not hasattr(rejection, "protocol_version"):
            data = getattr(rejection, "data", None)
            if rejection.code == UNSUPPORTED_PROTOCOL_VERSION:  # type: ignore[union-attr]
                data = {**(data or {}), "supported": SUPPORTED_VERSIONS}
            await _reject(send, request_id, McpError(rejection.code, rejection.message, data))  # type: ignore[union-attr]
            return
        assert isinstance(meta, dict)
        capabilities = meta.get(META_CAPABILITIES)
        if not isinstance(capabilities, dict):
            await _reject(send, request_id, McpError(INVALID_PARAMS, f"{META_CAPABILITIES} must be an object"))
            return
        if "id" not in message:
            await send_accepted(send)  # 2026-07-28 defines no client-to-server notifications over HTTP
            return
        if self.draining.is_set():
            await send_error(send, 503, request_id, McpError(-32603, "gateway is shutting down"))
            return
        if method == "tools/call":
            mismatch = self._param_header_mismatch(param_headers, params)
            if mismatch is not None:
                await _reject(send, request_id, mismatch)
                return
        client = ClientContext.from_meta(meta)
        if method == "subscriptions/listen":
            await self._listen(request_id, params, headers, receive, send)
            return
        stream = ResponseStream(send, [], None)
        call = Call(method, params, client, stream, request_id, principal, headers=headers)
        payload, error = await self._run_cancellable(call, receive)
        if payload is None:
            return  # the client hung up: cancelled
        await stream.finish(payload, ERROR_CODE_HTTP_STATUS.get(error, 200) if error is not None else 200)

    def _param_header_mismatch(self, present: dict[str, str] | None, params: dict[str, Any]) -> McpError | None:
        entry = self.gateway.snapshot.lookup("tools", params.get("name"))  # type: ignore[arg-type]
        if entry is None or (entry.param_headers is None and not present):
            return None
        arguments = params.get("arguments")
        rejection = validate_mcp_param_headers(
            entry.definition.get("inputSchema"), arguments if isinstance(arguments, dict) else {}, present or {}
        )
        return McpError(rejection.code, rejection.message) if rejection is not None else None

    async def _run_cancellable(self, call: Call, receive: Any) -> tuple[bytes | None, int | None]:
        """Serve `call`; if the client disconnects first, cancel it and return (None, None)."""
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
            return await answer(self.gateway, call, set())
        except asyncio.CancelledError:
            if hung_up:
                task.uncancel()
                return None, None
            raise
        finally:
            timer.cancel()
            if watcher:
                watcher[0].cancel()

    # -- subscriptions/listen ------------------------------------------------------------------------

    async def _listen(
        self, request_id: Any, params: dict[str, Any], headers: dict[bytes, bytes], receive: Any, send: Any
    ) -> None:
        if b"text/event-stream" not in headers.get(b"accept", b""):
            await send_error(send, 406, request_id, McpError(INVALID_REQUEST, "Accept must include text/event-stream"))
            return
        try:
            listen = await Listen.open(self.gateway, request_id, params)
        except McpError as exc:
            await _reject(send, request_id, exc)
            return
        self._listens.add(listen)
        disconnected = asyncio.create_task(wait_disconnect(receive, listen.queue))
        tag = {META_SUBSCRIPTION: request_id}
        try:
            await send({"type": "http.response.start", "status": 200, "headers": sse.SSE_HEADERS})
            await send({"type": "http.response.body", "body": sse.event(listen.acknowledgement()), "more_body": True})
            while not self.draining.is_set():
                try:
                    data = await asyncio.wait_for(listen.queue.get(), _KEEPALIVE_SECONDS)
                except TimeoutError:
                    await send({"type": "http.response.body", "body": sse.KEEPALIVE, "more_body": True})
                    continue
                if not data:
                    break
                await send({"type": "http.response.body", "body": sse.event(data), "more_body": True})
            if self.draining.is_set():
                end = {"jsonrpc": "2.0", "id": request_id, "result": {"resultType": "complete", "_meta": tag}}
                await send({"type": "http.response.body", "body": sse.event(orjson.dumps(end)), "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            disconnected.cancel()
            self._listens.discard(listen)
            await listen.close(self.gateway)

    def fan_out(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        for listen in self._listens:
            listen.offer(method, params, uri)

    def stop_streams(self) -> None:
        for listen in self._listens:
            with contextlib.suppress(asyncio.QueueFull):
                listen.queue.put_nowait(b"")

    def _warn_lenient(self, meta: dict[str, Any]) -> None:
        info = meta.get(META_CLIENT_INFO)
        name = str(info.get("name")) if isinstance(info, dict) else "unknown client"
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
                return routing, params, key
            params[key] = value.decode("latin-1").strip(" \t")
    return routing, params, None


async def _reject(send: Any, request_id: Any, error: McpError) -> None:
    await send_error(send, ERROR_CODE_HTTP_STATUS.get(error.code, 400), request_id, error)
