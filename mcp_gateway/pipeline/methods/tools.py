"""`tools/call`: the tool a caller names (through its tenant's renames) and the arguments its upstream gets."""

from __future__ import annotations

from typing import Any

from mcp.shared.inbound import mcp_param_headers

from ...calls import Result, Target
from ...catalog.catalog import Catalog
from ...jsonrpc import INVALID_PARAMS, McpError
from ...policy import CurrentPolicy
from ...policy.views import viewed_arguments
from ..exchange import Exchange
from ..upstream_call import UpstreamCaller
from .base import Method


class CallTool(Method):
    name = "tools/call"
    reaches_upstream = True

    def __init__(self, catalog: Catalog, policy: CurrentPolicy, upstream: UpstreamCaller) -> None:
        self._catalog = catalog
        self._policy = policy
        self._upstream = upstream

    def route(self, exchange: Exchange) -> Result | None:
        params = exchange.call.params
        name = params.get("name")
        arguments = params.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        if not isinstance(name, str):
            exchange.target = Target("tools", None)
            return self.unknown(exchange)
        view = None
        engine = self._policy.engine
        if engine is not None:
            views, renames = engine.tool_views(exchange.call.principal.tenant)
            if name in renames:
                name = renames[name]
            elif name in views and views[name].name:
                # This tenant knows the tool by another name: under this one it does not exist for it.
                exchange.target = Target("tools", name)
                return self.unknown(exchange)
            view = views.get(name)
        entry = self._catalog.snapshot.index["tools"].get(name)
        if entry is None:
            exchange.target = Target("tools", name)
            return self.unknown(exchange)
        exchange.target = Target(
            "tools", entry.exposed, entry.upstream, entry.original, entry, viewed_arguments(view, arguments)
        )
        return None

    def unknown(self, exchange: Exchange) -> Result:
        name = exchange.target.name if exchange.target is not None else None
        return Result.failed(McpError(INVALID_PARAMS, f"Unknown tool: {name or exchange.call.params.get('name')}"))

    def refused(self, exchange: Exchange, rule: str, message: str) -> Result:
        # A tool error the model can read and act on, naming the rule.
        text = f"{message} (policy rule '{rule}')"
        return Result({"content": [{"type": "text", "text": text}], "isError": True})

    async def serve(self, exchange: Exchange) -> Result:
        target = exchange.target
        assert target is not None and target.entry is not None
        arguments = target.arguments or {}
        params: dict[str, Any] = {**exchange.call.params, "name": target.original}
        if "arguments" in exchange.call.params or arguments:
            params["arguments"] = arguments
        param_headers = target.entry.param_headers
        headers = mcp_param_headers(param_headers, arguments) if param_headers else None
        return await self._upstream.send(exchange, params, headers)
