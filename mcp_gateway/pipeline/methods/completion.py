"""`completion/complete`: argument completion for a prompt or a resource template, routed by its `ref`."""

from __future__ import annotations

from ...calls import Result, Target
from ...catalog.catalog import Catalog
from ...catalog.routing import ResourceRouter
from ...jsonrpc import INVALID_PARAMS, McpError
from ..exchange import Exchange
from ..upstream_call import UpstreamCaller
from .base import Method
from .resources import not_found, route_uri

_NOTHING = {"completion": {"values": [], "hasMore": False}}


class Complete(Method):
    name = "completion/complete"
    reaches_upstream = True

    def __init__(self, catalog: Catalog, router: ResourceRouter, upstream: UpstreamCaller) -> None:
        self._catalog = catalog
        self._router = router
        self._upstream = upstream

    def route(self, exchange: Exchange) -> Result | None:
        ref = exchange.call.params.get("ref")
        if not isinstance(ref, dict):
            return Result.failed(McpError(INVALID_PARAMS, "ref must be an object"))
        if ref.get("type") == "ref/prompt":
            name = ref.get("name")
            entry = self._catalog.snapshot.index["prompts"].get(name) if isinstance(name, str) else None
            if entry is None:
                exchange.target = Target("prompts", name if isinstance(name, str) else None)
                return self.unknown(exchange)
            exchange.target = Target("prompts", entry.exposed, entry.upstream, entry.original, entry)
            return None
        if ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
            routed = route_uri(exchange, ref["uri"], self._router, self._catalog)
            return routed if isinstance(routed, Result) else None
        return Result.failed(McpError(INVALID_PARAMS, "ref.type must be ref/prompt or ref/resource"))

    def unknown(self, exchange: Exchange) -> Result:
        target = exchange.target
        if target is not None and target.kind == "resources":
            return not_found(exchange)
        name = target.name if target is not None else None
        return Result.failed(McpError(INVALID_PARAMS, f"Unknown prompt: {name}"))

    def refused(self, exchange: Exchange, rule: str, message: str) -> Result:
        return Result(dict(_NOTHING))  # nothing to complete with

    async def serve(self, exchange: Exchange) -> Result:
        target = exchange.target
        assert target is not None
        ref = exchange.call.params["ref"]
        renamed = {**ref, "name": target.original} if target.kind == "prompts" else {**ref, "uri": target.original}
        return await self._upstream.send(exchange, {**exchange.call.params, "ref": renamed})
