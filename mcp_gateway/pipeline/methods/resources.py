"""`resources/read` and `resources/(un)subscribe`: a resource URI, made canonical (one spelling per
resource, so the policy and the upstream agree on what it names), routed to the upstream that serves it."""

from __future__ import annotations

from typing import Any

from ...calls import Result, Target
from ...catalog.catalog import Catalog
from ...catalog.routing import ResourceRouter
from ...catalog.uris import NonCanonicalUri, canonical_uri
from ...jsonrpc import INVALID_PARAMS, RESOURCE_NOT_FOUND, McpError
from ..exchange import Exchange
from ..upstream_call import UpstreamCaller
from .base import Method


class ResourceMethod(Method):
    def __init__(self, catalog: Catalog, router: ResourceRouter) -> None:
        self._catalog = catalog
        self._router = router

    def route(self, exchange: Exchange) -> Result | None:
        uri = exchange.call.params.get("uri")
        if not isinstance(uri, str):
            return Result.failed(McpError(INVALID_PARAMS, "uri must be a string"))
        routed = route_uri(exchange, uri, self._router, self._catalog)
        return routed if isinstance(routed, Result) else None

    def unknown(self, exchange: Exchange) -> Result:
        return not_found(exchange)


class ReadResource(ResourceMethod):
    name = "resources/read"
    reaches_upstream = True

    def __init__(self, catalog: Catalog, router: ResourceRouter, upstream: UpstreamCaller, default_ttl_ms: int):
        super().__init__(catalog, router)
        self._upstream = upstream
        self._views = router.views
        self._default_ttl_ms = default_ttl_ms

    async def serve(self, exchange: Exchange) -> Result:
        target = exchange.target
        assert target is not None and target.upstream is not None
        result = await self._upstream.send(exchange, {**exchange.call.params, "uri": target.original})
        if result.error is not None:
            result.error = _in_clients_era(exchange, result.error)
            return result
        payload = result.payload
        assert payload is not None
        namer = self._views[target.upstream].namer
        contents = payload.get("contents")
        if namer.prefix and isinstance(contents, list):
            payload = {
                **payload,
                "contents": [
                    {**c, "uri": namer.uri(c["uri"])} if isinstance(c, dict) and isinstance(c.get("uri"), str) else c
                    for c in contents
                ],
            }
        if exchange.call.client.modern and "ttlMs" not in payload:
            payload = {**payload, "ttlMs": self._default_ttl_ms, "cacheScope": payload.get("cacheScope", "public")}
        result.payload = payload
        return result


class Subscribe(ResourceMethod):
    """`resources/subscribe` and `resources/unsubscribe`: the session's subscription set is the
    conversation's, which watches `Result.target` (the canonical URI) once this succeeds."""

    def __init__(self, name: str, catalog: Catalog, router: ResourceRouter) -> None:
        super().__init__(catalog, router)
        self.name = name

    async def serve(self, exchange: Exchange) -> Result:
        return Result({})


def route_uri(exchange: Exchange, uri: str, router: ResourceRouter, catalog: Catalog) -> Target | Result:
    """Set `exchange.target` to the resource `uri` names; a Result when it names none."""
    try:
        canonical = canonical_uri(uri)
    except NonCanonicalUri as exc:
        exchange.target = Target("resources", None)
        return Result.failed(McpError(INVALID_PARAMS, f"{exc}: {uri[:200]}", {"uri": uri[:200]}))
    routed = router.resolve(canonical)
    if routed is None:
        exchange.target = Target("resources", canonical)
        return not_found(exchange)
    upstream, original = routed
    entry = catalog.snapshot.index["resources"].get(canonical)
    exchange.target = Target("resources", canonical, upstream, original, entry)
    return exchange.target


def not_found(exchange: Exchange, data: dict[str, Any] | None = None) -> Result:
    """Resource-not-found in the client's era: -32602 with data.uri (2026-07-28, SEP-2164) or -32002."""
    target = exchange.target
    uri = target.name if target is not None and target.name is not None else exchange.call.params.get("uri")
    code = INVALID_PARAMS if exchange.call.client.modern else RESOURCE_NOT_FOUND
    return Result.failed(McpError(code, "Resource not found", {**(data or {}), "uri": uri}))


def _in_clients_era(exchange: Exchange, error: McpError) -> McpError:
    data = error.data if isinstance(error.data, dict) else None
    is_not_found = error.code == RESOURCE_NOT_FOUND or (
        error.code == INVALID_PARAMS and data is not None and "uri" in data
    )
    if not is_not_found:
        return error
    code = INVALID_PARAMS if exchange.call.client.modern else RESOURCE_NOT_FOUND
    target = exchange.target
    return McpError(code, error.message, {**(data or {}), "uri": target.name if target else None})
