"""The streamable HTTP front door at `/mcp`: both protocol eras on one endpoint.

A lean ASGI path rather than the SDK server: no result validation (vendor fields survive), no task group
or memory stream per request. Each POST body is parsed once and classified body-first: a request carrying
the 2026-07-28 `_meta` envelope, or a header naming a version newer than the handshake era, goes to the
stateless front (front/modern.py); `initialize` and session traffic go to the handshake-era front
(front/legacy.py). Both run their calls through the same pipeline and are finished here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ..auth import AuthError, Principal, insufficient_scope
from ..calls import Call, ClientContext, ScopeRefusal
from ..catalog.catalog import Catalog
from ..catalog.sync import ChangeListener
from ..conversation.answer import Reply
from ..conversation.era import has_envelope
from ..conversation.message import Invalid, Notification, Request, Response, parse
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, McpError, notification
from ..pipeline import Pipeline
from ..telemetry.access_log import AccessLog, OtlpAccessLog, refusal_entry
from ..upstream.watches import ResourceWatches
from .auth_gate import AuthGate
from .legacy import LegacyFront
from .modern import ModernFront
from .responses import BodyTooLarge, ClientGone, ResponseStream, read_body, send_accepted, send_error
from .sessions import SessionRegistry

log = logging.getLogger("mcp_gateway.front")


class McpHttpFront:
    def __init__(
        self,
        pipeline: Pipeline,
        catalog: Catalog,
        watches: ResourceWatches,
        registry: SessionRegistry,
        auth: AuthGate | None,
        anonymous: Principal,
        access_log: AccessLog | OtlpAccessLog | None,
        *,
        lenient_version_header: bool = True,
        max_streams_per_session: int = 4,
    ) -> None:
        self.pipeline = pipeline
        self.auth = auth
        self.anonymous = anonymous
        self.sessions = registry
        self._access_log = access_log
        self.draining = asyncio.Event()
        self.legacy = LegacyFront(pipeline, registry, self.draining, max_streams_per_session)
        self.modern = ModernFront(pipeline, catalog, watches, self.draining, lenient_version_header, self.finish)

    @property
    def listener(self) -> ChangeListener:
        """Where list changes and resource updates go: every stream this process holds."""
        return self._fan_out

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers = dict(raw_headers)  # Host, Origin and Content-Type were checked for every route (app.py)
        principal = self.anonymous
        if self.auth is not None:
            started = time.perf_counter()
            try:
                principal = await self.auth.principal(headers)
            except AuthError as exc:
                await self.auth.refuse(send, exc)
                if self._access_log is not None:
                    self._access_log.record(
                        refusal_entry(http_method=scope["method"], status=exc.status, error=exc.error, started=started)
                    )
                return
        method = scope["method"]
        if method == "POST":
            await self._post(raw_headers, headers, receive, send, principal)
        elif method in ("GET", "DELETE") and _names_modern_version(headers) and b"mcp-session-id" not in headers:
            # 2026-07-28 has no standalone stream and no session to delete.
            error = McpError(INVALID_REQUEST, "Method not allowed: 2026-07-28 uses POST only")
            await send_error(send, 405, None, error, [(b"allow", b"POST")])
        elif method == "GET":
            await self.legacy.get(headers, receive, send, principal)
        elif method == "DELETE":
            await self.legacy.delete(headers, send, principal)
        else:
            error = McpError(INVALID_REQUEST, "Method not allowed")
            await send_error(send, 405, None, error, [(b"allow", b"GET, POST, DELETE")])

    async def _post(
        self,
        raw_headers: list[tuple[bytes, bytes]],
        headers: dict[bytes, bytes],
        receive: Any,
        send: Any,
        principal: Principal,
    ) -> None:
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            await send_error(send, 413, None, McpError(INVALID_REQUEST, "request body too large"))
            return
        except ClientGone:
            return
        try:
            message = parse(body)
        except Invalid as invalid:
            await send_error(send, 400, invalid.id, invalid.error)
            return
        if isinstance(message, Response):
            await self.legacy.client_answer(headers, message, send, principal)
            return
        if _is_modern(message, headers):
            await self.modern.post(raw_headers, headers, message, receive, send, principal)
            return
        request_id = message.id if isinstance(message, Request) else None
        if self.draining.is_set():
            await send_error(send, 503, request_id, McpError(INTERNAL_ERROR, "gateway is shutting down"))
            return
        if message.method == "initialize":
            if not isinstance(message, Request):
                await send_error(send, 400, None, McpError(INVALID_REQUEST, "initialize must be a request"))
                return
            client = ClientContext.from_initialize(message.params)
            await self.legacy.initialize(Call("initialize", message.params, client, principal, message.id), send)
            return
        session = await self.legacy.session(headers, request_id, send, principal)
        if session is None:
            return
        if isinstance(message, Notification):
            self.legacy.client_notification(session, message)
            await send_accepted(send)
            return
        stream = self.legacy.stream_for(session, send)
        call = Call(message.method, message.params, session.client, principal, message.id, stream, headers)
        await self.finish(stream, await self.legacy.request(session, call), False)

    async def finish(self, stream: ResponseStream, reply: Reply, modern: bool) -> None:
        """Send a call's answer: a refusal for missing scopes is a 403 step-up challenge; a 2026-07-28
        error takes the spec's HTTP status."""
        error = reply.result.error
        if isinstance(error, ScopeRefusal) and not stream.started:
            if self.auth is not None:
                await self.auth.refuse(stream.send, insufficient_scope(error.scopes, error.message), reply.request_id)
            else:
                await send_error(stream.send, 403, reply.request_id, error)
            return
        status = ERROR_CODE_HTTP_STATUS.get(error.code, 200) if modern and error is not None else 200
        await stream.finish(reply.body, status)

    async def _fan_out(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        self.legacy.fan_out(orjson.dumps(notification(method, params)), uri)
        self.modern.fan_out(method, params, uri)

    def stop_streams(self) -> None:
        self.draining.set()
        self.legacy.stop_streams()
        self.modern.stop_streams()


def _is_modern(message: Request | Notification, headers: dict[bytes, bytes]) -> bool:
    """Body first: the `_meta` envelope marks 2026-07-28; else a header naming a non-handshake version
    without a session (which the modern ladder then answers, e.g. a missing envelope)."""
    if has_envelope(message.method, message.params):
        return True
    return _names_modern_version(headers) and b"mcp-session-id" not in headers


def _names_modern_version(headers: dict[bytes, bytes]) -> bool:
    version = headers.get(b"mcp-protocol-version")
    return version is not None and version.decode("latin-1").strip() not in HANDSHAKE_PROTOCOL_VERSIONS
