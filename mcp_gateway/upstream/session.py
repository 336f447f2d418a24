"""One logical MCP session with an upstream server, in whichever era the upstream speaks.

Era choice (2026-07-28 versioning, "Backward Compatibility"): probe `server/discover`; a modern answer
means modern, anything else (error, timeout) falls back to `initialize`. Modern requests are stamped with
the per-request `_meta` envelope and routing headers; legacy requests ride the session opened by
`initialize`.

This layer also bridges what the client side cannot do itself: a modern upstream's `input_required`
result is driven to completion through the relay when the downstream client is legacy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from typing import Any

from mcp.shared.inbound import encode_header_value
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ..jsonrpc import (
    INTERNAL_ERROR,
    REQUEST_TIMEOUT,
    UPSTREAM_ERROR,
    McpError,
    notification,
    request,
)
from ..version import (
    GATEWAY_INFO,
    LEGACY_VERSION,
    LOG_LEVELS,
    META_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_SERVER_INFO,
    META_VERSION,
    MODERN_VERSION,
)
from .inflight import CallsInFlight, NotificationHandler, send_quietly
from .relay import Relay
from .transport import Transport
from .transport_http import SessionExpired, StreamableHttpTransport
from .transport_sse import LegacySseTransport

log = logging.getLogger("mcp_gateway.upstream")


# What the gateway declares to a legacy upstream at `initialize`: everything it can relay. A push for a
# capability the current downstream client lacks is refused per call by the relay.
LEGACY_CLIENT_CAPABILITIES: dict[str, Any] = {
    "roots": {"listChanged": True},
    "sampling": {},
    "elicitation": {"form": {}, "url": {}},
}
MAX_INPUT_ROUNDS = 10
_NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


class UpstreamSession:
    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        protocol: str = "auto",
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        on_notification: NotificationHandler | None = None,
    ) -> None:
        self.name = name
        self.transport = transport
        self.protocol = protocol
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.on_notification = on_notification
        self.protocol_version = LEGACY_VERSION
        self.modern = False
        self.capabilities: dict[str, Any] = {}
        self.server_info: dict[str, Any] = {}
        self.instructions: str | None = None
        self._ids = itertools.count(1)
        self._calls = CallsInFlight(name, transport, on_notification)
        self._listen_task: asyncio.Task[None] | None = None
        self.subscribed: set[str] = set()  # handshake era: URIs this session has subscribed to
        self._watched: frozenset[str] = frozenset()  # 2026-07-28: URIs on the listen stream
        # Handshake era: the session-wide log level asked of the upstream, the most verbose any client
        # wants (the relay filters per client); None until a client asks for one.
        self._log_level: str | None = None
        self._reinit_lock = asyncio.Lock()
        transport.on_incoming = self._calls.incoming

    # -- opening -------------------------------------------------------------------------------------

    async def open(self) -> None:
        await self.transport.start()
        can_be_modern = not isinstance(self.transport, LegacySseTransport)
        if self.protocol != LEGACY_VERSION and can_be_modern and await self._try_discover():
            self.modern = True
            self.protocol_version = MODERN_VERSION
            self._restart_listen()
            return
        if self.protocol == MODERN_VERSION:
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.name}' does not speak {MODERN_VERSION}")
        await self._initialize()

    async def _try_discover(self) -> bool:
        probe_timeout = min(self.connect_timeout, 5.0) if self.protocol == "auto" else self.connect_timeout
        params = {"_meta": self._envelope({}, None)}
        try:
            async with asyncio.timeout(probe_timeout):
                response = await self.transport.exchange(
                    request(f"discover-{next(self._ids)}", "server/discover", params),
                    headers=self._modern_headers("server/discover", params),
                )
        except (McpError, TimeoutError) as exc:
            log.debug("upstream %s: discover probe failed (%s); using initialize", self.name, exc)
            if self.transport.closed.is_set():
                # Some legacy stdio servers exit on an unknown first message: start afresh for initialize.
                await self.transport.aclose()
                self.transport.closed.clear()
                await self.transport.start()
            return False
        result = response.get("result")
        if not isinstance(result, dict) or MODERN_VERSION not in (result.get("supportedVersions") or []):
            return False
        self._adopt_server(result)
        return True

    async def _initialize(self) -> None:
        params = {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": LEGACY_CLIENT_CAPABILITIES,
            "clientInfo": GATEWAY_INFO,
        }
        self.transport.set_session_headers({})
        self.subscribed = set()
        self._log_level = None
        async with asyncio.timeout(self.connect_timeout):
            response = await self.transport.exchange(request(next(self._ids), "initialize", params))
        if "error" in response:
            raise McpError.from_error(response["error"])
        result = response.get("result") or {}
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.name}' negotiated unsupported version {version!r}")
        self.protocol_version = version
        self._adopt_server(result)
        session_headers = {"mcp-protocol-version": version}
        session_id = getattr(self.transport, "last_session_id", None)
        if session_id:
            session_headers["mcp-session-id"] = session_id
        self.transport.set_session_headers(session_headers)
        await self.transport.send(notification("notifications/initialized"))
        await self.transport.start_listening()

    def _adopt_server(self, result: dict[str, Any]) -> None:
        self.capabilities = result.get("capabilities") or {}
        meta = result.get("_meta") or {}
        self.server_info = result.get("serverInfo") or meta.get(META_SERVER_INFO) or {}
        self.instructions = result.get("instructions")

    def watch_resources(self, uris: set[str]) -> None:
        """2026-07-28: the resource URIs to hear `notifications/resources/updated` for (re-listens)."""
        if frozenset(uris) != self._watched:
            self._watched = frozenset(uris)
            self._restart_listen()

    def _restart_listen(self) -> None:
        if self._listen_task is not None:
            self._listen_task.cancel()
            self._listen_task = None
        if self.on_notification is not None and (_wants_listen(self.capabilities) or self._watched):
            self._listen_task = asyncio.create_task(self._listen_forever(), name=f"listen:{self.name}")

    async def _listen_forever(self) -> None:
        """Hold one `subscriptions/listen` stream so list changes reach the catalog (modern upstreams)."""
        wanted: dict[str, Any] = {
            "toolsListChanged": bool((self.capabilities.get("tools") or {}).get("listChanged")),
            "promptsListChanged": bool((self.capabilities.get("prompts") or {}).get("listChanged")),
            "resourcesListChanged": bool((self.capabilities.get("resources") or {}).get("listChanged")),
        }
        if self._watched:
            wanted["resourceSubscriptions"] = sorted(self._watched)
        delay = 0.5
        while not self.transport.closed.is_set():
            params: dict[str, Any] = {"notifications": wanted, "_meta": self._envelope({}, None)}
            try:
                await self.transport.exchange(
                    request(f"listen-{next(self._ids)}", "subscriptions/listen", params),
                    headers=self._modern_headers("subscriptions/listen", params),
                )
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("upstream %s: listen stream ended: %s", self.name, exc)
                delay = min(delay * 2, 15.0)
            await asyncio.sleep(delay)

    # -- requests ------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        relay: Relay | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its raw result dict; errors raise `McpError`. `tenant` is whose call
        it is (connections are shared fairly between tenants)."""
        params = dict(params) if params else {}
        if relay is not None and not self.modern and relay.log_level is not None:
            await self._widen_log_level(relay.log_level)
        rounds = 0
        while True:
            result = await self._request_once(method, params, relay, timeout or self.timeout, headers, tenant)
            if result.get("resultType") != "input_required" or relay is None:
                return result
            if relay.mrtr_passthrough and not _answered_here(result, relay):
                return result  # a modern client takes input_required itself
            # Legacy client, modern upstream (or input the gateway answers itself): ask, then retry.
            rounds += 1
            if rounds > MAX_INPUT_ROUNDS:
                raise McpError(INTERNAL_ERROR, f"upstream '{self.name}' kept asking for input; gave up")
            params = await self._answer_input_requests(params, result, relay)

    async def _answer_input_requests(
        self, params: dict[str, Any], result: dict[str, Any], relay: Relay
    ) -> dict[str, Any]:
        requests_ = result.get("inputRequests") or {}
        keys = list(requests_)
        answers = await asyncio.gather(
            *(relay.ask(requests_[k].get("method", ""), _as_legacy_request(requests_[k])) for k in keys)
        )
        retry = {k: v for k, v in params.items() if k not in ("inputResponses", "requestState")}
        retry["inputResponses"] = dict(zip(keys, answers, strict=True))
        if "requestState" in result:
            retry["requestState"] = result["requestState"]
        return retry

    async def _request_once(
        self,
        method: str,
        params: dict[str, Any],
        relay: Relay | None,
        timeout: float,
        extra_headers: dict[str, str] | None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        meta = params.get("_meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta.pop("progressToken", None)
        if relay is not None and self._calls.begin(request_id, relay):
            meta["progressToken"] = request_id  # the relay puts the client's own token back
        if self.modern:
            meta = self._envelope(meta, relay)
        else:
            for key in (META_VERSION, META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL):
                meta.pop(key, None)
        if meta:
            params = {**params, "_meta": meta}
        elif "_meta" in params:
            params = {k: v for k, v in params.items() if k != "_meta"}
        headers = self._modern_headers(method, params) if self.modern else None
        if extra_headers:
            headers = {**(headers or {}), **extra_headers}
        message = request(request_id, method, params)
        answered = False
        try:
            async with asyncio.timeout(timeout):
                try:
                    response = await self.transport.exchange(message, headers=headers, related=relay, tenant=tenant)
                except SessionExpired:
                    await self._reinitialize()
                    response = await self.transport.exchange(message, headers=headers, related=relay, tenant=tenant)
            answered = True
        except TimeoutError:
            self._cancel_upstream(request_id, "timed out at the gateway")
            raise McpError(
                REQUEST_TIMEOUT, f"upstream '{self.name}' did not answer {method} within {timeout:g}s"
            ) from None
        except asyncio.CancelledError:
            self._cancel_upstream(request_id, "cancelled by the client")
            raise
        finally:
            outbox = self._calls.end(request_id, relay, answered)
        if outbox is not None:
            await outbox.flush()  # the call's own notifications reach its client before its answer
        error = response.get("error")
        if error is not None:
            raise McpError.from_error(error)
        result = response.get("result")
        if not isinstance(result, dict):
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.name}' sent a malformed result for {method}")
        return result

    async def _widen_log_level(self, wanted: str) -> None:
        """Handshake era: make the upstream's session-wide level at least as verbose as `wanted`."""
        current = self._log_level
        if current is not None and LOG_LEVELS.index(wanted) >= LOG_LEVELS.index(current):
            return
        if "logging" not in self.capabilities or wanted not in LOG_LEVELS:
            return
        self._log_level = wanted
        try:
            await self._request_once("logging/setLevel", {"level": wanted}, None, self.connect_timeout, None)
        except McpError as exc:
            log.debug("upstream %s: logging/setLevel %s refused: %s", self.name, wanted, exc.message)

    async def probe(self, timeout: float) -> bool:
        """Is the upstream alive? `ping` in the handshake era, `server/discover` in 2026-07-28."""
        method = "server/discover" if self.modern else "ping"
        try:
            await self._request_once(method, {}, None, timeout, None)
        except McpError as exc:
            return exc.code not in (UPSTREAM_ERROR, REQUEST_TIMEOUT)  # an error answer is still an answer
        return True

    async def _reinitialize(self) -> None:
        async with self._reinit_lock:
            log.info("upstream %s: session expired; initializing again", self.name)
            await self._initialize()

    def _cancel_upstream(self, request_id: Any, reason: str) -> None:
        # Modern HTTP: aborting the POST is the cancellation. Everywhere else say it explicitly.
        if self.modern and isinstance(self.transport, StreamableHttpTransport):
            return
        message = notification("notifications/cancelled", {"requestId": request_id, "reason": reason})
        task = asyncio.create_task(send_quietly(self.transport, message))
        task.add_done_callback(lambda _t: None)

    def _envelope(self, meta: dict[str, Any], relay: Relay | None) -> dict[str, Any]:
        meta[META_VERSION] = MODERN_VERSION
        meta[META_CAPABILITIES] = _modern_capabilities(relay.client_capabilities) if relay else {}
        meta[META_CLIENT_INFO] = (relay.client_info if relay else None) or GATEWAY_INFO
        level = relay.log_level if relay else None
        if level:
            meta[META_LOG_LEVEL] = level
        return meta

    def _modern_headers(self, method: str, params: dict[str, Any]) -> dict[str, str] | None:
        if not isinstance(self.transport, StreamableHttpTransport):
            return None
        headers = {"mcp-protocol-version": MODERN_VERSION, "mcp-method": method}
        name_key = _NAME_BEARING.get(method)
        if name_key and isinstance(params.get(name_key), str):
            headers["mcp-name"] = encode_header_value(params[name_key])
        return headers

    async def aclose(self) -> None:
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(BaseException):
                await self._listen_task
        self._calls.cancel_all()
        await self.transport.aclose()


def _as_legacy_request(input_request: dict[str, Any]) -> dict[str, Any]:
    """The params of an `inputRequests` entry as a handshake-era client expects them: 2025-11-25 URL
    elicitations carry an `elicitationId`, which 2026-07-28 dropped."""
    params = input_request.get("params") or {}
    url_mode = input_request.get("method") == "elicitation/create" and params.get("mode") == "url"
    if url_mode and "elicitationId" not in params:
        return {**params, "elicitationId": uuid.uuid4().hex}
    return params


def _answered_here(result: dict[str, Any], relay: Relay) -> bool:
    """Does the gateway answer every input this result asks for (sampling, when it samples itself)?"""
    requests_ = result.get("inputRequests")
    if not isinstance(requests_, dict) or not requests_:
        return False
    return all(isinstance(r, dict) and relay.answers(str(r.get("method", ""))) for r in requests_.values())


def _wants_listen(capabilities: dict[str, Any]) -> bool:
    return any((capabilities.get(kind) or {}).get("listChanged") for kind in ("tools", "prompts", "resources"))


def _modern_capabilities(capabilities: dict[str, Any]) -> dict[str, Any]:
    """Translate a session's (legacy) client capabilities to the 2026-07-28 shape."""
    out: dict[str, Any] = {}
    for key in ("sampling", "elicitation", "extensions", "experimental"):
        if key in capabilities:
            out[key] = capabilities[key]
    if "roots" in capabilities:
        out["roots"] = {}
    return out
