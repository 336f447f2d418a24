"""The streamable HTTP front door at `/mcp`: both protocol eras on one endpoint.

A lean ASGI path rather than the SDK server (reference §4.5): no result validation (vendor fields
survive), no task group or memory stream per request. Each POST body is parsed once and classified
body-first (reference §2.3): a request carrying the 2026-07-28 `_meta` envelope, or a header naming a
version newer than the handshake era, goes to the stateless front (front/modern.py); `initialize`
and session traffic go to the handshake-era front (front/legacy.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ..auth import AuthError, Principal
from ..core.gateway import Gateway
from ..jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, McpError, notification, valid_id
from ..telemetry.access_log import refusal_entry
from ..version import META_VERSION
from .auth_gate import AuthGate
from .legacy import LegacyFront
from .modern import ModernFront
from .responses import BodyTooLarge, ClientGone, read_body, send_accepted, send_error
from .security import OriginGuard
from .sessions import SessionRegistry

log = logging.getLogger("mcp_gateway.front")

ANONYMOUS = Principal("default", "anonymous")


class McpHttpFront:
    def __init__(
        self,
        gateway: Gateway,
        registry: SessionRegistry,
        guard: OriginGuard,
        lenient_version_header: bool = True,
        auth: AuthGate | None = None,
    ) -> None:
        self.gateway = gateway
        self.auth = auth
        self.sessions = registry
        self.guard = guard
        self.draining = asyncio.Event()
        self.legacy = LegacyFront(gateway, registry, self.draining)
        self.modern = ModernFront(gateway, self.draining, lenient_version_header)
        gateway.listeners.append(self._fan_out)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers = dict(raw_headers)
        rejected = self.guard.check(_text(headers.get(b"host")), _text(headers.get(b"origin")))
        if rejected is not None:
            status, reason = rejected
            await send_error(send, status, None, McpError(INVALID_REQUEST, reason))
            return
        principal = ANONYMOUS
        if self.auth is not None:
            started = time.perf_counter()
            try:
                principal = await self.auth.principal(headers)
            except AuthError as exc:
                await self.auth.refuse(send, exc)
                access_log = self.gateway.access_log
                if access_log is not None:
                    access_log.record(
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
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            await send_error(send, 400, None, McpError(PARSE_ERROR, "Parse error: invalid JSON"))
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            detail = "batches are not supported" if isinstance(message, list) else "not a JSON-RPC 2.0 message"
            await send_error(send, 400, None, McpError(INVALID_REQUEST, f"Invalid Request: {detail}"))
            return
        method = message.get("method")
        request_id = message.get("id")
        if method is None:
            await self.legacy.client_answer(headers, message, send, principal)
            return
        if not isinstance(method, str) or ("id" in message and not valid_id(request_id)):
            await send_error(send, 400, None, McpError(INVALID_REQUEST, "Invalid Request"))
            return
        params = message.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            await send_error(send, 400, request_id, McpError(INVALID_PARAMS, "params must be an object"))
            return
        if _is_modern(method, params, headers):
            serving = self.modern.post(raw_headers, headers, message, params, receive, send, principal)
            await self._guarded(serving, send, request_id)
            return
        if self.draining.is_set():
            await send_error(send, 503, request_id, McpError(INTERNAL_ERROR, "gateway is shutting down"))
            return
        if method == "initialize":
            await self.legacy.initialize(request_id, params, send, principal)
            return
        session = await self.legacy.session(headers, request_id, send, principal)
        if session is None:
            return
        if "id" not in message:
            self.legacy.client_notification(session, method, params)
            await send_accepted(send)
            return
        serving = self.legacy.request(session, request_id, method, params, send, principal, headers)
        await self._guarded(serving, send, request_id)

    async def _guarded(self, serving: Any, send: Any, request_id: Any = None) -> None:
        """Serve; a call refused for missing scopes becomes a 403 step-up challenge."""
        try:
            await serving
        except AuthError as exc:
            if self.auth is None:
                raise
            await self.auth.refuse(send, exc, request_id)

    async def _fan_out(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        self.legacy.fan_out(orjson.dumps(notification(method, params)), uri)
        self.modern.fan_out(method, params, uri)

    def stop_streams(self) -> None:
        self.draining.set()
        self.legacy.stop_streams()
        self.modern.stop_streams()


def _is_modern(method: str, params: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    """Body first: the `_meta` envelope marks 2026-07-28; else a header naming a non-handshake version
    without a session (which the modern ladder then answers, e.g. a missing envelope)."""
    meta = params.get("_meta")
    if isinstance(meta, dict) and META_VERSION in meta and method != "initialize":
        return True
    return _names_modern_version(headers) and b"mcp-session-id" not in headers


def _names_modern_version(headers: dict[bytes, bytes]) -> bool:
    version = headers.get(b"mcp-protocol-version")
    return version is not None and version.decode("latin-1").strip() not in HANDSHAKE_PROTOCOL_VERSIONS


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
