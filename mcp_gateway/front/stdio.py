"""The stdio front (`mcp-gateway stdio`): one client on stdin/stdout, e.g. Claude Desktop or Goose.

Both eras: `initialize` opens a handshake-era conversation; a request carrying the 2026-07-28 `_meta`
envelope is served statelessly (no server-to-client requests: the MRTR bridge turns upstream pushes
into `input_required`; `subscriptions/listen` streams tagged notifications until the client sends
`notifications/cancelled` for it). Each request runs as its own task so a slow tool never blocks the
next message; everything that is not protocol goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from typing import Any

import orjson
from mcp.shared.inbound import classify_inbound_request

from ..core.call import Call, ClientContext
from ..core.gateway import SUPPORTED_VERSIONS, Gateway
from ..jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    McpError,
    error_message,
    notification,
    request,
    result_message,
)
from ..version import LEGACY_VERSION, META_VERSION, MODERN_VERSION
from .answer import answer
from .modern import Listen

log = logging.getLogger("mcp_gateway.front")


class StdioFront:
    def __init__(self, gateway: Gateway, reader: asyncio.StreamReader, writer: Any) -> None:
        self.gateway = gateway
        self._reader = reader
        self._writer = writer  # has .write(bytes) and async .drain()
        self._write_lock = asyncio.Lock()
        self._client = ClientContext(protocol_version=LEGACY_VERSION)
        self._inflight: dict[Any, asyncio.Task[None]] = {}
        self._cancelled: set[Any] = set()
        self._awaiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._subscriptions: set[str] = set()
        self._listens: dict[Any, Listen] = {}
        gateway.listeners.append(self._on_change)

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            self._writer.write(data + b"\n")
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def run(self) -> None:
        while True:
            line = await self._reader.readline()
            if not line:
                break
            line = line.strip()
            if line:
                await self._dispatch(line)
        for task in list(self._inflight.values()):
            task.cancel()

    async def _dispatch(self, line: bytes) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            await self._write(error_message(None, McpError(PARSE_ERROR, "Parse error: invalid JSON")))
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            await self._write(error_message(None, McpError(INVALID_REQUEST, "Invalid Request")))
            return
        method = message.get("method")
        if method is None:
            future = self._awaiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(McpError.from_error(message["error"]))
                else:
                    future.set_result(message.get("result") or {})
            return
        params = message.get("params") or {}
        if not isinstance(params, dict):
            await self._write(error_message(message.get("id"), McpError(INVALID_PARAMS, "params must be an object")))
            return
        if "id" not in message:
            if method == "notifications/cancelled":
                request_id = params.get("requestId")
                listen = self._listens.pop(request_id, None)
                if listen is not None:
                    await listen.close(self.gateway)
                task = self._inflight.get(request_id)
                if task is not None:
                    self._cancelled.add(request_id)
                    task.cancel()
            return
        request_id = message["id"]
        meta = params.get("_meta")
        if method != "initialize" and isinstance(meta, dict) and META_VERSION in meta:
            await self._modern(message, request_id, method, params, meta)
            return
        if method == "initialize":
            self._client = ClientContext.from_initialize(params)
            self._client.session_id = "stdio"  # a handshake-era conversation is open
            result = self.gateway.initialize_result(self._client.protocol_version)
            await self._write(result_message(request_id, result))
            return
        task = asyncio.create_task(self._serve(request_id, method, params))
        self._inflight[request_id] = task

    async def _modern(
        self, message: dict[str, Any], request_id: Any, method: str, params: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        rejection = classify_inbound_request(message, supported_modern_versions=[MODERN_VERSION])
        if not hasattr(rejection, "protocol_version"):
            data = getattr(rejection, "data", None)
            if isinstance(data, dict) and "supported" in data:
                data = {**data, "supported": SUPPORTED_VERSIONS}
            await self._write(error_message(request_id, McpError(rejection.code, rejection.message, data)))  # type: ignore[union-attr]
            return
        client = ClientContext.from_meta(meta)
        if method == "subscriptions/listen":
            try:
                listen = await Listen.open(self.gateway, request_id, params)
            except McpError as exc:
                await self._write(error_message(request_id, exc))
                return
            self._listens[request_id] = listen
            await self._write(listen.acknowledgement())
            return
        task = asyncio.create_task(self._serve(request_id, method, params, client, _NoAsking(self)))
        self._inflight[request_id] = task

    async def _serve(
        self,
        request_id: Any,
        method: str,
        params: dict[str, Any],
        client: ClientContext | None = None,
        sink: Any = None,
    ) -> None:
        call = Call(method, params, client or self._client, sink or self, request_id, transport="pipe")
        try:
            payload, error = await answer(self.gateway, call, self._cancelled, raise_auth=False)
            if error is None:
                await self._after(method, params)
        finally:
            self._inflight.pop(request_id, None)
        await self._write(payload)

    async def _after(self, method: str, params: dict[str, Any]) -> None:
        uri = params.get("uri")
        if method == "resources/subscribe" and isinstance(uri, str) and uri not in self._subscriptions:
            try:
                await self.gateway.watches.watch(uri)
            except McpError as exc:
                log.warning("resource subscription not watched upstream: %s", exc.message)
                return
            self._subscriptions.add(uri)
        elif method == "resources/unsubscribe" and isinstance(uri, str) and uri in self._subscriptions:
            self._subscriptions.discard(uri)
            await self.gateway.watches.unwatch(uri)

    # CallSink: stdio has one stream, shared by every call.
    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._write(orjson.dumps(notification(method, params)))

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = f"gw-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._awaiting[request_id] = future
        try:
            await self._write(orjson.dumps(request(request_id, method, params)))
            return await future
        except asyncio.CancelledError:
            await self.notify("notifications/cancelled", {"requestId": request_id, "reason": "withdrawn upstream"})
            raise
        finally:
            self._awaiting.pop(request_id, None)

    async def _on_change(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        # Handshake era: to the conversation opened by `initialize`; 2026-07-28: to matching listens.
        if self._client.session_id is not None and (uri is None or uri in self._subscriptions):
            await self.notify(method, params)
        for listen in self._listens.values():
            listen.offer(method, params, uri)
            while not listen.queue.empty():
                await self._write(listen.queue.get_nowait())


class _NoAsking:
    """The sink of a 2026-07-28 request on stdio: notifications only; the server MUST NOT send requests."""

    def __init__(self, front: StdioFront) -> None:
        self._front = front

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._front.notify(method, params)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise McpError(INVALID_REQUEST, f"{method} cannot be sent to a 2026-07-28 client")


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client over this process's stdin/stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    front = StdioFront(gateway, reader, writer)
    await front.run()
