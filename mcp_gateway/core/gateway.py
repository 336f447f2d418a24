"""The gateway core: routes each `Call` to the catalog or to an upstream and returns the raw result.

Transport-free by design (ARCHITECTURE rule 2): fronts decode bytes into `Call`s and encode what this
returns. Upstream results pass through as parsed dicts with only the renames the catalog requires.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp.shared.inbound import mcp_param_headers

from ..catalog.catalog import CacheHint, Catalog, Entry, Snapshot, UpstreamView
from ..catalog.curation import Curator
from ..catalog.naming import Namer, uri_scheme_prefix
from ..config import GatewayConfig
from ..jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND, McpError
from ..policy import PolicyEngine
from ..state import MemoryBackend, Sealer, StateBackend
from ..telemetry.access_log import AccessLog
from ..telemetry.tracing_mcp import mcp_error_type
from ..upstream.pool import UpstreamPool
from ..version import GATEWAY_INFO, LEGACY_VERSION, LOG_LEVELS, META_SERVER_INFO, MODERN_VERSION
from .access import Access, PolicyDenied
from .call import Call
from .catalog_sync import CatalogSync, ChangeListener
from .input_bridge import InputBridge
from .relay import CallRelay, Sampler
from .watches import ResourceWatches

if TYPE_CHECKING:
    from ..telemetry.hub import Telemetry

log = logging.getLogger("mcp_gateway.core")
audit = logging.getLogger("mcp_gateway.audit")


SERVER_CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "logging": {},
    "completions": {},
}
# Versions named in `server/discover` and in -32022 errors: the modern one first, and the handshake
# version so a dual-era client that cannot speak ours falls back to `initialize` (reference §2.2).
SUPPORTED_VERSIONS = [MODERN_VERSION, LEGACY_VERSION]
# Methods the 2026-07-28 revision removed: a modern client gets -32601 for them.
_REMOVED_IN_MODERN = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
# Where MRTR applies (SEP-2322), so where a handshake-era upstream's pushes must be bridged.
_MRTR_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
_CACHEABLE_LISTS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}


class Gateway:
    def __init__(
        self, config: GatewayConfig, backend: StateBackend | None = None, sealer: Sealer | None = None
    ) -> None:
        self.config = config
        self.backend = backend or MemoryBackend()
        self.bridge = InputBridge(sealer or Sealer.from_secrets([]), self.backend, config.server.input_wait)
        self.sampler: Sampler | None = None
        self.telemetry: Telemetry | None = None  # set by the app: spans and metrics
        naming = config.naming
        self.views: dict[str, UpstreamView] = {}
        for name, upstream in config.upstreams.items():
            if not upstream.enabled:
                continue
            prefix = (upstream.prefix or name) if upstream.prefixing else None
            self.views[name] = UpstreamView(
                name,
                Namer(prefix, naming.separator, naming.max_length),
                {
                    "tools": Curator.from_config(upstream.tools),
                    "prompts": Curator.from_config(upstream.prompts),
                    "resources": Curator.from_config(upstream.resources),
                },
                [
                    (re.compile(fnmatch.translate(glob)), frozenset(scopes))
                    for glob, scopes in upstream.tool_scopes.items()
                ],
            )
        self.access = Access(config, self.backend, list(self.views))
        self.access_log: AccessLog | None = None  # set by the app when configured
        self.catalog = Catalog(list(self.views))
        self.sync = CatalogSync(self.catalog, self.views, self.backend)
        self.pool = UpstreamPool(
            config.upstreams,
            self.sync.upstream_up,
            self.sync.upstream_down,
            self.sync.upstream_notified,
            config.base_dir,
        )
        self.watches = ResourceWatches(self.pool, self._resolve_uri)
        self.sync.attach(self.pool, self.watches)
        self.listeners: list[ChangeListener] = self.sync.listeners  # the fronts append theirs here
        self._default_cache = CacheHint(config.server.list_ttl_ms, False)
        self._page_size = config.server.page_size
        self._handlers: dict[str, Callable[[Call], Awaitable[dict[str, Any]]]] = {
            "tools/call": self._call_tool,
            "tools/list": self._list("tools"),
            "prompts/list": self._list("prompts"),
            "resources/list": self._list("resources"),
            "resources/templates/list": self._list("resourceTemplates"),
            "prompts/get": self._get_prompt,
            "resources/read": self._read_resource,
            "resources/subscribe": self._subscribe,
            "resources/unsubscribe": self._subscribe,
            "completion/complete": self._complete,
            "logging/setLevel": self._set_level,
            "ping": self._ping,
        }
        self._modern_handlers = {m: h for m, h in self._handlers.items() if m not in _REMOVED_IN_MODERN}
        self._modern_handlers["server/discover"] = self._discover

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect every upstream, waiting for each first attempt up to the longest connect timeout."""
        wait = max((u.connect_timeout for u in self.config.upstreams.values()), default=5.0)
        await self.pool.start(wait)

    async def stop(self) -> None:
        await self.bridge.aclose()
        await self.pool.stop()

    @property
    def policy(self) -> PolicyEngine | None:
        return self.access.policy

    @policy.setter
    def policy(self, engine: PolicyEngine | None) -> None:
        self.access.policy = engine

    @property
    def snapshot(self) -> Snapshot:
        return self.catalog.snapshot

    def initialize_result(self, protocol_version: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "protocolVersion": protocol_version,
            "capabilities": SERVER_CAPABILITIES,
            "serverInfo": self.server_info(),
        }
        if instructions := self.instructions():
            result["instructions"] = instructions
        return result

    def instructions(self) -> str | None:
        parts = [self.config.server.instructions] if self.config.server.instructions else []
        for name, handle in self.pool.handles.items():
            session = handle.session
            if session is not None and session.instructions:
                parts.append(f"## {name}\n{session.instructions}")
        return "\n\n".join(parts) or None

    # -- the one entry point -------------------------------------------------------------------------

    async def handle(self, call: Call) -> dict[str, Any]:
        if call.client.modern:
            return await self._handle_modern(call)
        handler = self._handlers.get(call.method)
        if handler is None:
            raise McpError(METHOD_NOT_FOUND, f"Method not found: {call.method}")
        return await handler(call)

    async def _handle_modern(self, call: Call) -> dict[str, Any]:
        handler = self._modern_handlers.get(call.method)
        if handler is None:
            raise McpError(METHOD_NOT_FOUND, "Method not found", call.method)
        result = await handler(call)  # a dict of our own (parsed or built for this call): safe to amend
        if "resultType" not in result:
            result["resultType"] = "complete"
        kind = _CACHEABLE_LISTS.get(call.method)
        if kind is not None:
            hint = self._default_cache.merge(self.catalog.snapshot.cache[kind])
            result["ttlMs"] = hint.ttl_ms
            result["cacheScope"] = "private" if hint.private else "public"
        elif call.method == "resources/read" and "ttlMs" not in result:
            result["ttlMs"] = self._default_cache.ttl_ms
            result.setdefault("cacheScope", "public")
        return result

    def discover_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "resultType": "complete",
            "supportedVersions": SUPPORTED_VERSIONS,
            "capabilities": SERVER_CAPABILITIES,
            "_meta": {META_SERVER_INFO: self.server_info()},
            "ttlMs": self._default_cache.ttl_ms,
            "cacheScope": "public",
        }
        if instructions := self.instructions():
            result["instructions"] = instructions
        return result

    def server_info(self) -> dict[str, Any]:
        return {**GATEWAY_INFO, "name": self.config.server.name}

    # -- handlers ------------------------------------------------------------------------------------

    def _named(self, kind: str, name: Any, call: Call) -> Entry:
        """The catalog entry of an exposed tool or prompt name; unknown names are invalid params, and one
        the caller lacks scopes for is a 403 naming them."""
        entry = self.catalog.snapshot.index[kind].get(name) if isinstance(name, str) else None
        if entry is None:
            raise McpError(INVALID_PARAMS, f"Unknown {kind.rstrip('s')}: {name}")
        self.access.check_scopes(entry.upstream, entry.scopes, call)
        return entry

    def _tool_entry(self, call: Call) -> tuple[Entry, dict[str, Any]]:
        """The tool a call names (through the tenant's renames) and its arguments as the upstream gets them."""
        arguments = call.params.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        name, views = self.access.tool_view(call, call.params.get("name"))
        entry = self._named("tools", name, call)
        view = views.get(entry.exposed) if views else None
        return entry, self.access.tool_arguments(view, arguments)

    async def _call_tool(self, call: Call) -> dict[str, Any]:
        entry, arguments = self._tool_entry(call)
        try:
            self.access.check_policy(call, "tools", entry.exposed, entry.upstream, arguments)
        except PolicyDenied as denied:
            # A tool error the model can read and act on, naming the rule.
            return {
                "content": [{"type": "text", "text": f"{denied.message} (policy rule '{denied.rule}')"}],
                "isError": True,
            }
        headers = None
        if entry.param_headers:
            headers = mcp_param_headers(entry.param_headers, arguments)
        params = {**call.params, "name": entry.original}
        if "arguments" in call.params or arguments:
            params["arguments"] = arguments
        slots = await self.access.admit(call.principal, "tools", entry.exposed, entry.upstream)
        try:
            return await self._forward(
                entry.upstream, call, params, headers, target=entry.exposed, tool=entry.definition
            )
        finally:
            for key in slots:
                await self.access.release(key)

    def _list(self, kind: str) -> Callable[[Call], Awaitable[dict[str, Any]]]:
        async def list_items(call: Call) -> dict[str, Any]:
            cursor = call.params.get("cursor")
            if cursor is not None and not isinstance(cursor, str):
                raise McpError(INVALID_PARAMS, "cursor must be a string")
            shown = self.access.shown_tools(call) if kind == "tools" else None
            items, next_cursor = self.catalog.snapshot.page(
                kind, cursor, self._page_size, self.access.view(kind, call), shown
            )
            result: dict[str, Any] = {kind: items}
            if next_cursor is not None:
                result["nextCursor"] = next_cursor
            return result

        return list_items

    async def _get_prompt(self, call: Call) -> dict[str, Any]:
        entry = self._named("prompts", call.params.get("name"), call)
        arguments = call.params.get("arguments")
        try:
            self.access.check_policy(
                call, "prompts", entry.exposed, entry.upstream, arguments if isinstance(arguments, dict) else {}
            )
        except PolicyDenied as denied:
            raise McpError(INVALID_PARAMS, f"{denied.message} (policy rule '{denied.rule}')") from None
        slots = await self.access.admit(call.principal, "prompts", entry.exposed, entry.upstream)
        try:
            params = {**call.params, "name": entry.original}
            return await self._forward(entry.upstream, call, params, target=entry.exposed)
        finally:
            for key in slots:
                await self.access.release(key)

    async def _read_resource(self, call: Call) -> dict[str, Any]:
        uri = call.params.get("uri")
        if not isinstance(uri, str):
            raise McpError(INVALID_PARAMS, "uri must be a string")
        upstream, original = self._resolve_uri(uri, call.client.modern)
        self.access.check_scopes(upstream, frozenset(), call)
        self.access.check_resource_policy(call, uri, upstream)
        slots = await self.access.admit(call.principal, "resources", uri, upstream)
        try:
            result = await self._forward(upstream, call, {**call.params, "uri": original}, target=uri)
        except McpError as exc:
            raise _resource_error_for(call, uri, exc) from None
        finally:
            for key in slots:
                await self.access.release(key)
        namer = self.views[upstream].namer
        contents = result.get("contents")
        if namer.prefix and isinstance(contents, list):
            result = {
                **result,
                "contents": [
                    {**c, "uri": namer.uri(c["uri"])} if isinstance(c, dict) and isinstance(c.get("uri"), str) else c
                    for c in contents
                ],
            }
        return result

    async def _subscribe(self, call: Call) -> dict[str, Any]:
        # The session's subscription set is the front's; the core keeps one upstream watch per URI.
        uri = call.params.get("uri")
        if not isinstance(uri, str):
            raise McpError(INVALID_PARAMS, "uri must be a string")
        upstream, _ = self._resolve_uri(uri, call.client.modern)  # unknown URIs are an error, as upstream
        self.access.check_scopes(upstream, frozenset(), call)
        self.access.check_resource_policy(call, uri, upstream)
        return {}

    async def _discover(self, call: Call) -> dict[str, Any]:
        return self.discover_result()

    async def _complete(self, call: Call) -> dict[str, Any]:
        ref = call.params.get("ref")
        if not isinstance(ref, dict):
            raise McpError(INVALID_PARAMS, "ref must be an object")
        if ref.get("type") == "ref/prompt":
            entry = self._named("prompts", ref.get("name"), call)
            try:
                self.access.check_policy(call, "prompts", entry.exposed, entry.upstream, None)
            except PolicyDenied:
                return {"completion": {"values": [], "hasMore": False}}  # nothing to complete with
            upstream, new_ref = entry.upstream, {**ref, "name": entry.original}
        elif ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
            upstream, original = self._resolve_uri(ref["uri"], call.client.modern)
            self.access.check_scopes(upstream, frozenset(), call)
            self.access.check_resource_policy(call, ref["uri"], upstream)
            new_ref = {**ref, "uri": original}
        else:
            raise McpError(INVALID_PARAMS, "ref.type must be ref/prompt or ref/resource")
        return await self._forward(upstream, call, {**call.params, "ref": new_ref})

    async def _set_level(self, call: Call) -> dict[str, Any]:
        level = call.params.get("level")
        if level not in LOG_LEVELS:
            raise McpError(INVALID_PARAMS, f"level must be one of {', '.join(LOG_LEVELS)}")
        call.client.log_level = level
        return {}

    async def _ping(self, call: Call) -> dict[str, Any]:
        return {}

    # -- routing helpers -----------------------------------------------------------------------------

    async def _forward(
        self,
        upstream: str,
        call: Call,
        params: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        target: str | None = None,
        tool: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send the call upstream, traced (its span's context goes into the upstream request) and timed."""
        telemetry = self.telemetry
        if telemetry is None:
            return await self._send_upstream(upstream, call, params, headers)
        tracing = telemetry.tracing.enabled
        span = telemetry.start_call(call, upstream, target, tool, params.get("arguments")) if tracing else None
        if span is not None:
            call.trace_headers = span.headers()
            params = {**params, "_meta": span.meta(params.get("_meta"))}
            headers = {**headers, **call.trace_headers} if headers else span.headers()
        started = time.perf_counter()
        error: McpError | None = None
        result: dict[str, Any] | None = None
        try:
            result = await self._send_upstream(upstream, call, params, headers)
            return result
        except McpError as exc:
            error = exc
            raise
        finally:
            is_error = result is not None and result.get("isError") is True
            if span is not None:
                if error is not None:
                    span.finish(error_code=error.code, error_message=error.message)
                else:
                    span.finish(result=result, is_error=is_error)
            if telemetry.metrics is not None:
                telemetry.metrics.mcp_client(
                    time.perf_counter() - started,
                    method=call.method,
                    target=target,
                    error_type=mcp_error_type(error.code if error is not None else None, is_error),
                    protocol_version=self._upstream_protocol(upstream),
                    upstream=upstream,
                )

    def _upstream_protocol(self, upstream: str) -> str | None:
        handle = self.pool.get(upstream)
        return handle.health.protocol_version if handle is not None else None

    async def _send_upstream(
        self, upstream: str, call: Call, params: dict[str, Any], headers: dict[str, str] | None
    ) -> dict[str, Any]:
        handle = self.pool.get(upstream)
        if handle is None:
            raise McpError(METHOD_NOT_FOUND, f"unknown upstream '{upstream}'")
        call.upstream = upstream
        session = handle.session
        if call.method in _MRTR_METHODS and (
            self.bridge.owns(params)
            or (call.client.modern and session is not None and not session.modern and _can_be_asked(call))
        ):
            # A modern client and a handshake-era upstream: pushes become input_required rounds.
            first = {k: v for k, v in params.items() if k not in ("inputResponses", "requestState")}
            if "requestState" in params and not self.bridge.owns(params):
                raise McpError(INVALID_PARAMS, "requestState is invalid: it was not issued by this gateway")
            return await self.bridge.run(
                call,
                lambda relay: handle.request(
                    call.method, first, relay=relay, headers=headers, principal=call.principal
                ),
                call.principal.binding,
            )
        return await handle.request(
            call.method, params, relay=CallRelay(call, self.sampler), headers=headers, principal=call.principal
        )

    def _resolve_uri(self, uri: str, modern: bool = False) -> tuple[str, str]:
        unprefixed: list[UpstreamView] = []
        for view in self.views.values():
            if not view.namer.prefix:
                unprefixed.append(view)
                continue
            original = view.namer.original_uri(uri)
            if original is not None:
                return view.name, original
        if unprefixed:
            snapshot = self.catalog.snapshot
            entry = snapshot.index["resources"].get(uri)
            if entry is not None and self.views[entry.upstream].namer.prefix is None:
                return entry.upstream, uri
            scheme = uri_scheme_prefix(uri)
            for template in snapshot.lists["resourceTemplates"]:
                owner = self.views[template.upstream]
                if owner.namer.prefix is None and scheme and template.original.startswith(scheme):
                    return owner.name, uri
            return unprefixed[0].name, uri
        code = INVALID_PARAMS if modern else RESOURCE_NOT_FOUND
        raise McpError(code, "Resource not found", {"uri": uri})

    # -- catalog changes -----------------------------------------------------------------------------

    async def announce_all_changed(self) -> None:
        """Tell every client its lists may have changed (e.g. a new policy is in force)."""
        await self.sync.broadcast_all_changed()


def _can_be_asked(call: Call) -> bool:
    """Did the client declare anything an upstream could ask it? Without it, pushes are refused inline."""
    capabilities = call.client.capabilities
    return "sampling" in capabilities or "elicitation" in capabilities or "roots" in capabilities


def _resource_error_for(call: Call, uri: str, error: McpError) -> McpError:
    """Resource-not-found in the client's era: -32602 with data.uri (2026-07-28, SEP-2164) or -32002."""
    data = error.data if isinstance(error.data, dict) else None
    not_found = error.code == RESOURCE_NOT_FOUND or (
        error.code == INVALID_PARAMS and data is not None and "uri" in data
    )
    if not not_found:
        return error
    code = INVALID_PARAMS if call.client.modern else RESOURCE_NOT_FOUND
    return McpError(code, error.message, {**(data or {}), "uri": uri})
