"""The streamable HTTP front door at `/mcp`: bytes in, `Call`s to the core, bytes out.

A lean ASGI path rather than the SDK server (reference §4.5): no result validation (vendor fields
survive), no task group or memory stream per request. A request is answered as plain JSON unless the
call emits something first (progress, a log line, a server-to-client request); then the response turns
into an SSE stream on the fly and the final result is its last event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS

from ..core.call import Call, ClientContext
from ..core.gateway import Gateway
from ..jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    McpError,
    error_message,
    notification,
    request,
    result_message,
    valid_id,
)
from ..version import LEGACY_VERSION
from . import sse
from .answer import answer
from .security import OriginGuard
from .sessions import FrontSession, SessionRegistry

log = logging.getLogger("mcp_gateway.front")

MAX_BODY = 4 * 1024 * 1024
_JSON = (b"content-type", b"application/json")
_META_VERSION = "io.modelcontextprotocol/protocolVersion"


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class McpHttpFront:
    def __init__(self, gateway: Gateway, registry: SessionRegistry, guard: OriginGuard) -> None:
        self.gateway = gateway
        self.sessions = registry
        self.guard = guard
        self.draining = asyncio.Event()
        gateway.listeners.append(self._fan_out)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        rejected = self.guard.check(_text(headers.get(b"host")), _text(headers.get(b"origin")))
        if rejected is not None:
            status, reason = rejected
            await _send_json(send, status, error_message(None, McpError(INVALID_REQUEST, reason)))
            return
        method = scope["method"]
        if method == "POST":
            await self._post(headers, receive, send)
        elif method == "GET":
            await self._get(headers, receive, send)
        elif method == "DELETE":
            await self._delete(headers, send)
        else:
            error = error_message(None, McpError(INVALID_REQUEST, "Method not allowed"))
            await _send_json(send, 405, error, [(b"allow", b"GET, POST, DELETE")])

    # -- POST ----------------------------------------------------------------------------------------

    async def _post(self, headers: dict[bytes, bytes], receive: Any, send: Any) -> None:
        try:
            body = await _read_body(receive)
        except _BodyTooLarge:
            await _send_json(send, 413, error_message(None, McpError(INVALID_REQUEST, "request body too large")))
            return
        except _ClientGone:
            return
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _send_json(send, 400, error_message(None, McpError(PARSE_ERROR, "Parse error: invalid JSON")))
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            detail = "batches are not supported" if isinstance(message, list) else "not a JSON-RPC 2.0 message"
            await _send_json(send, 400, error_message(None, McpError(INVALID_REQUEST, f"Invalid Request: {detail}")))
            return
        method = message.get("method")
        request_id = message.get("id")
        if method is None:
            await self._client_answer(headers, message, send)
            return
        if not isinstance(method, str) or ("id" in message and not valid_id(request_id)):
            await _send_json(send, 400, error_message(None, McpError(INVALID_REQUEST, "Invalid Request")))
            return
        params = message.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            await _send_json(send, 400, error_message(request_id, McpError(INVALID_PARAMS, "params must be an object")))
            return
        meta = params.get("_meta")
        if method != "initialize" and isinstance(meta, dict) and _META_VERSION in meta:
            await self._modern(request_id, meta, send)
            return
        if method == "server/discover":
            await self._modern(request_id, meta if isinstance(meta, dict) else {}, send)
            return
        if self.draining.is_set():
            await _send_json(send, 503, error_message(request_id, McpError(INTERNAL_ERROR, "gateway is shutting down")))
            return
        if method == "initialize":
            await self._initialize(request_id, params, send)
            return
        session = await self._session(headers, request_id, send)
        if session is None:
            return
        if "id" not in message:
            self._client_notification(session, method, params)
            await _send_accepted(send)
            return
        await self._request(session, request_id, method, params, send)

    async def _initialize(self, request_id: Any, params: dict[str, Any], send: Any) -> None:
        if request_id is None:
            await _send_json(send, 400, error_message(None, McpError(INVALID_REQUEST, "initialize must be a request")))
            return
        client = ClientContext.from_initialize(params)
        session = self.sessions.create(client)
        body = result_message(request_id, self.gateway.initialize_result(client.protocol_version))
        await _send_json(send, 200, body, [(b"mcp-session-id", session.sid.encode())])

    async def _session(self, headers: dict[bytes, bytes], request_id: Any, send: Any) -> FrontSession | None:
        sid = headers.get(b"mcp-session-id")
        if sid is None:
            await _send_json(
                send, 400, error_message(request_id, McpError(INVALID_REQUEST, "Bad Request: Missing session ID"))
            )
            return None
        session = self.sessions.get(sid.decode("latin-1"))
        if session is None:
            await _send_json(send, 404, error_message(request_id, McpError(-32001, "Session not found")))
            return None
        version = headers.get(b"mcp-protocol-version")
        if version is not None and version.decode("latin-1") not in KNOWN_PROTOCOL_VERSIONS:
            error = McpError(INVALID_REQUEST, f"Unsupported protocol version: {version.decode('latin-1')}")
            await _send_json(send, 400, error_message(request_id, error))
            return None
        return session

    async def _client_answer(self, headers: dict[bytes, bytes], message: dict[str, Any], send: Any) -> None:
        """The client answers a request we sent it (sampling, elicitation, roots)."""
        if "result" not in message and "error" not in message:
            await _send_json(send, 400, error_message(None, McpError(INVALID_REQUEST, "Invalid Request: no method")))
            return
        session = await self._session(headers, None, send)
        if session is None:
            return
        session.answer(message)
        await _send_accepted(send)

    def _client_notification(self, session: FrontSession, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/cancelled":
            request_id = params.get("requestId")
            task = session.inflight.get(request_id)
            if task is not None and not task.done():
                session.cancelled.add(request_id)
                task.cancel()

    async def _request(
        self, session: FrontSession, request_id: Any, method: str, params: dict[str, Any], send: Any
    ) -> None:
        stream = _ResponseStream(send, session)
        call = Call(method, params, session.client, stream, request_id)
        task = asyncio.current_task()
        assert task is not None
        session.inflight[request_id] = task
        try:
            payload = await answer(self.gateway, call, session.subscriptions, session.cancelled)
        finally:
            session.inflight.pop(request_id, None)
        await stream.finish(payload)

    async def _modern(self, request_id: Any, meta: dict[str, Any], send: Any) -> None:
        # The 2026-07-28 front lands with its own issue; until then a probing dual-era client gets the
        # spec's "unsupported version" answer naming a handshake version, which makes it fall back.
        requested = meta.get(_META_VERSION)
        error = McpError(
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            {"supported": [LEGACY_VERSION], "requested": requested if isinstance(requested, str) else None},
        )
        await _send_json(send, 400, error_message(request_id, error))

    # -- GET: the standalone stream ------------------------------------------------------------------

    async def _get(self, headers: dict[bytes, bytes], receive: Any, send: Any) -> None:
        if b"text/event-stream" not in headers.get(b"accept", b""):
            error = McpError(INVALID_REQUEST, "Accept must include text/event-stream")
            await _send_json(send, 406, error_message(None, error))
            return
        session = await self._session(headers, None, send)
        if session is None:
            return
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
        session.streams.append(queue)
        disconnected = asyncio.create_task(_wait_disconnect(receive, queue))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*sse.SSE_HEADERS, (b"mcp-session-id", session.sid.encode())],
                }
            )
            await send({"type": "http.response.body", "body": sse.KEEPALIVE, "more_body": True})
            while not self.draining.is_set():
                try:
                    data = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    await send({"type": "http.response.body", "body": sse.KEEPALIVE, "more_body": True})
                    continue
                if not data:
                    break
                await send({"type": "http.response.body", "body": sse.event(data), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            disconnected.cancel()
            if queue in session.streams:
                session.streams.remove(queue)

    async def _delete(self, headers: dict[bytes, bytes], send: Any) -> None:
        session = await self._session(headers, None, send)
        if session is None:
            return
        self.sessions.end(session.sid)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _fan_out(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        data = orjson.dumps(notification(method, params))
        for session in self.sessions:
            if uri is not None and uri not in session.subscriptions:
                continue
            if session.streams:
                try:
                    session.streams[0].put_nowait(data)
                except asyncio.QueueFull:
                    log.warning("a client's GET stream is full; dropped %s", method)

    def stop_streams(self) -> None:
        self.draining.set()
        for session in self.sessions:
            for queue in session.streams:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(b"")


class _ResponseStream:
    """The `CallSink` of one POST: plain JSON until the call emits something, then SSE."""

    __slots__ = ("_closed", "_lock", "_send", "_session", "_started")

    def __init__(self, send: Any, session: FrontSession) -> None:
        self._send = send
        self._session = session
        self._started = False
        self._closed = False
        self._lock = asyncio.Lock()

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            if self._closed:
                return
            try:
                if not self._started:
                    await self._send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [*sse.SSE_HEADERS, (b"mcp-session-id", self._session.sid.encode())],
                        }
                    )
                    self._started = True
                await self._send({"type": "http.response.body", "body": data, "more_body": True})
            except OSError:
                self._closed = True

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._write(sse.event(orjson.dumps(notification(method, params))))

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id, answer = self._session.expect_answer()
        try:
            await self._write(sse.event(orjson.dumps(request(request_id, method, params))))
            return await answer
        except asyncio.CancelledError:
            # The upstream withdrew its request (or the call ended): tell the client to stop asking.
            await self.notify("notifications/cancelled", {"requestId": request_id, "reason": "withdrawn upstream"})
            raise
        finally:
            self._session.awaiting.pop(request_id, None)

    async def finish(self, payload: bytes) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._started:
                    await self._send({"type": "http.response.body", "body": sse.event(payload), "more_body": False})
                else:
                    await _send_json(self._send, 200, payload)
            except OSError:
                pass


async def _read_body(receive: Any) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _wait_disconnect(receive: Any, queue: asyncio.Queue[bytes]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(b"")
            return


async def _send_json(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_accepted(send: Any) -> None:
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
