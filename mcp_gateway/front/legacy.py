"""The handshake era (2025-11-25 and older) on the HTTP front: `initialize`, sessions, the GET stream.

Any process can serve any session (front/sessions.py). Server-to-client requests go out on the POST's
own SSE stream; the client's answer may arrive at another process and is routed back to this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS

from ..auth import Principal
from ..core.call import Call, ClientContext
from ..core.gateway import Gateway
from ..jsonrpc import INVALID_REQUEST, McpError, request, result_message
from . import sse
from .answer import answer
from .responses import ResponseStream, send_accepted, send_empty, send_error, send_json, wait_disconnect
from .sessions import FrontSession, SessionRegistry

log = logging.getLogger("mcp_gateway.front")

SESSION_NOT_FOUND = -32001
_KEEPALIVE_SECONDS = 15.0


class LegacyFront:
    def __init__(self, gateway: Gateway, sessions: SessionRegistry, draining: asyncio.Event) -> None:
        self.gateway = gateway
        self.sessions = sessions
        self.draining = draining

    # -- POST ----------------------------------------------------------------------------------------

    async def initialize(self, request_id: Any, params: dict[str, Any], send: Any, principal: Principal) -> None:
        if request_id is None:
            await send_error(send, 400, None, McpError(INVALID_REQUEST, "initialize must be a request"))
            return
        client = ClientContext.from_initialize(params)
        session = await self.sessions.create(client, principal.binding)
        body = result_message(request_id, self.gateway.initialize_result(client.protocol_version))
        await send_json(send, 200, body, [(b"mcp-session-id", session.sid.encode())])

    async def session(
        self, headers: dict[bytes, bytes], request_id: Any, send: Any, principal: Principal
    ) -> FrontSession | None:
        """The request's session, or None after answering the error (missing, unknown, bad version).
        A session opened by another caller is unknown to this one (404)."""
        sid = headers.get(b"mcp-session-id")
        if sid is None:
            await send_error(send, 400, request_id, McpError(INVALID_REQUEST, "Bad Request: Missing session ID"))
            return None
        session = await self.sessions.get(sid.decode("latin-1"), principal.binding)
        if session is None:
            await send_error(send, 404, request_id, McpError(SESSION_NOT_FOUND, "Session not found"))
            return None
        version = headers.get(b"mcp-protocol-version")
        if version is not None and version.decode("latin-1") not in KNOWN_PROTOCOL_VERSIONS:
            error = McpError(INVALID_REQUEST, f"Unsupported protocol version: {version.decode('latin-1')}")
            await send_error(send, 400, request_id, error)
            return None
        return session

    async def client_answer(
        self, headers: dict[bytes, bytes], message: dict[str, Any], send: Any, principal: Principal
    ) -> None:
        """The client answers a request we sent it (sampling, elicitation, roots)."""
        if "result" not in message and "error" not in message:
            await send_error(send, 400, None, McpError(INVALID_REQUEST, "Invalid Request: no method"))
            return
        session = await self.session(headers, None, send, principal)
        if session is None:
            return
        await self.sessions.route_answer(session, message)
        await send_accepted(send)

    def client_notification(self, session: FrontSession, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/cancelled":
            request_id = params.get("requestId")
            task = session.inflight.get(request_id)
            if task is not None and not task.done():
                session.cancelled.add(request_id)
                task.cancel()

    async def request(
        self,
        session: FrontSession,
        request_id: Any,
        method: str,
        params: dict[str, Any],
        send: Any,
        principal: Principal,
        headers: dict[bytes, bytes] | None = None,
    ) -> None:
        stream = ResponseStream(send, [(b"mcp-session-id", session.sid.encode())], self._asker(session))
        call = Call(method, params, session.client, stream, request_id, principal, headers=headers)
        task = asyncio.current_task()
        assert task is not None
        session.inflight[request_id] = task
        try:
            payload, error = await answer(self.gateway, call, session.cancelled)
        finally:
            session.inflight.pop(request_id, None)
        if error is None:
            await self._after(session, method, params)
        await stream.finish(payload)

    async def _after(self, session: FrontSession, method: str, params: dict[str, Any]) -> None:
        """Record what a successful call changed in the session, for every process to see."""
        if method == "logging/setLevel":
            await self.sessions.set_log_level(session, params["level"])
        elif method == "resources/subscribe":
            try:
                await self.sessions.subscribe(session, params["uri"])
            except McpError as exc:
                log.warning("resource subscription not watched upstream: %s", exc.message)
        elif method == "resources/unsubscribe" and isinstance(params.get("uri"), str):
            await self.sessions.unsubscribe(session, params["uri"])

    def _asker(self, session: FrontSession):  # type: ignore[no-untyped-def]
        async def ask(method: str, params: dict[str, Any], stream: ResponseStream) -> dict[str, Any]:
            request_id, future = self.sessions.expect_answer(session)
            try:
                await stream.write(sse.event(orjson.dumps(request(request_id, method, params))))
                return await future
            except asyncio.CancelledError:
                # The upstream withdrew its request (or the call ended): tell the client to stop asking.
                await stream.notify(
                    "notifications/cancelled", {"requestId": request_id, "reason": "withdrawn upstream"}
                )
                raise
            finally:
                session.awaiting.pop(request_id, None)

        return ask

    # -- GET: the standalone stream ------------------------------------------------------------------

    async def get(self, headers: dict[bytes, bytes], receive: Any, send: Any, principal: Principal) -> None:
        if b"text/event-stream" not in headers.get(b"accept", b""):
            await send_error(send, 406, None, McpError(INVALID_REQUEST, "Accept must include text/event-stream"))
            return
        session = await self.session(headers, None, send, principal)
        if session is None:
            return
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
        session.streams.append(queue)
        disconnected = asyncio.create_task(wait_disconnect(receive, queue))
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
                    data = await asyncio.wait_for(queue.get(), _KEEPALIVE_SECONDS)
                except TimeoutError:
                    await send({"type": "http.response.body", "body": sse.KEEPALIVE, "more_body": True})
                    await self.sessions.get(session.sid, session.binding)  # an open stream keeps it alive
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

    async def delete(self, headers: dict[bytes, bytes], send: Any, principal: Principal) -> None:
        session = await self.session(headers, None, send, principal)
        if session is None:
            return
        await self.sessions.end(session)
        await send_empty(send, 200)

    # -- notifications not tied to a call ------------------------------------------------------------

    def fan_out(self, data: bytes, uri: str | None) -> None:
        for session in self.sessions:
            if uri is not None and uri not in session.subscriptions:
                continue
            if session.streams:
                try:
                    session.streams[0].put_nowait(data)
                except asyncio.QueueFull:
                    log.warning("a client's GET stream is full; dropped a notification")

    def stop_streams(self) -> None:
        for session in self.sessions:
            for queue in session.streams:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(b"")
