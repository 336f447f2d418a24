"""The handshake era (2025-11-25 and older) on the HTTP front: `initialize`, sessions, the GET stream.

Any process can serve any session (front/sessions.py). Server-to-client requests go out on the POST's
own SSE stream; the client's answer may arrive at another process and is routed back to this one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mcp_types.version import KNOWN_PROTOCOL_VERSIONS

from ..auth import Principal
from ..calls import Call
from ..conversation import handshake, keepalive
from ..conversation.answer import Reply, answer
from ..conversation.message import Notification, Response
from ..jsonrpc import INVALID_REQUEST, McpError
from ..pipeline import Pipeline
from . import sse
from .responses import ResponseStream, send_accepted, send_empty, send_error, send_json, wait_disconnect
from .sessions import FrontSession, SessionRegistry, TooManySessions

log = logging.getLogger("mcp_gateway.front")

SESSION_NOT_FOUND = -32001
_RETRY = [(b"retry-after", b"5")]


class LegacyFront:
    def __init__(
        self, pipeline: Pipeline, sessions: SessionRegistry, draining: asyncio.Event, max_streams: int
    ) -> None:
        self.pipeline = pipeline
        self.sessions = sessions
        self.draining = draining
        self._max_streams = max_streams

    # -- POST ----------------------------------------------------------------------------------------

    async def initialize(self, call: Call, send: Any) -> None:
        """Answer `initialize` through the pipeline; the session opens when it succeeds."""
        reply = await answer(self.pipeline, call)
        headers = None
        if reply.ok:
            try:
                session = await self.sessions.create(call.client, call.principal.binding)
            except TooManySessions as refused:
                await send_error(send, 429, call.request_id, McpError(INVALID_REQUEST, str(refused)), _RETRY)
                return
            headers = [(b"mcp-session-id", session.sid.encode())]
        await send_json(send, 200, reply.body, headers)

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
            error = McpError(INVALID_REQUEST, f"Unsupported protocol version: {version.decode('latin-1')[:64]}")
            await send_error(send, 400, request_id, error)
            return None
        return session

    async def client_answer(
        self, headers: dict[bytes, bytes], message: Response, send: Any, principal: Principal
    ) -> None:
        """The client answers a request we sent it (sampling, elicitation, roots)."""
        session = await self.session(headers, None, send, principal)
        if session is None:
            return
        await self.sessions.route_answer(session, message)
        await send_accepted(send)

    def client_notification(self, session: FrontSession, message: Notification) -> None:
        handshake.notified(session, message)

    def stream_for(self, session: FrontSession, send: Any) -> ResponseStream:
        """The response stream of one POST of `session`: server-to-client requests may go out on it."""
        return ResponseStream(send, [(b"mcp-session-id", session.sid.encode())], self._asker(session))

    async def request(self, session: FrontSession, call: Call) -> Reply:
        return await handshake.serve(self.pipeline, session, call)

    def _asker(self, session: FrontSession):  # type: ignore[no-untyped-def]
        async def ask(method: str, params: dict[str, Any], stream: ResponseStream) -> dict[str, Any]:
            async def write(data: bytes) -> None:
                await stream.write(sse.event(data))

            return await session.dialogue.ask(method, params, write)

        return ask

    # -- GET: the standalone stream ------------------------------------------------------------------

    async def get(self, headers: dict[bytes, bytes], receive: Any, send: Any, principal: Principal) -> None:
        if b"text/event-stream" not in headers.get(b"accept", b""):
            await send_error(send, 406, None, McpError(INVALID_REQUEST, "Accept must include text/event-stream"))
            return
        session = await self.session(headers, None, send, principal)
        if session is None:
            return
        if len(session.streams) >= self._max_streams:
            error = McpError(INVALID_REQUEST, f"this session already has {self._max_streams} open GET stream(s)")
            await send_error(send, 429, None, error, _RETRY)
            return
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
        session.streams.append(queue)
        disconnected = asyncio.create_task(wait_disconnect(receive, queue))

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def event(data: bytes) -> None:
            await body(sse.event(data))

        async def touch() -> None:
            await self.sessions.get(session.sid, session.binding)  # an open stream keeps the session alive

        try:
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": [*sse.SSE_HEADERS, (b"mcp-session-id", session.sid.encode())],
            }
            await send(start)
            await body(sse.KEEPALIVE)
            if not self.draining.is_set():
                await keepalive.pump(queue, event, sse.KEEPALIVE, on_quiet=touch)
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
                keepalive.end(queue)
