"""`prompts/get`: the prompt a caller names, served by its upstream under the upstream's own name."""

from __future__ import annotations

from ...calls import Result, Target
from ...catalog.catalog import Catalog
from ...jsonrpc import INVALID_PARAMS, McpError
from ..exchange import Exchange
from ..upstream_call import UpstreamCaller
from .base import Method


class GetPrompt(Method):
    name = "prompts/get"
    reaches_upstream = True

    def __init__(self, catalog: Catalog, upstream: UpstreamCaller) -> None:
        self._catalog = catalog
        self._upstream = upstream

    def route(self, exchange: Exchange) -> Result | None:
        params = exchange.call.params
        name = params.get("name")
        entry = self._catalog.snapshot.index["prompts"].get(name) if isinstance(name, str) else None
        if entry is None:
            exchange.target = Target("prompts", name if isinstance(name, str) else None)
            return self.unknown(exchange)
        arguments = params.get("arguments")
        exchange.target = Target(
            "prompts",
            entry.exposed,
            entry.upstream,
            entry.original,
            entry,
            arguments if isinstance(arguments, dict) else {},
        )
        return None

    def unknown(self, exchange: Exchange) -> Result:
        return Result.failed(McpError(INVALID_PARAMS, f"Unknown prompt: {exchange.call.params.get('name')}"))

    async def serve(self, exchange: Exchange) -> Result:
        target = exchange.target
        assert target is not None
        return await self._upstream.send(exchange, {**exchange.call.params, "name": target.original})
