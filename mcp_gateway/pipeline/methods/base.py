"""The handler of one MCP method: it routes a call to its target and serves it once every step agreed.
Handlers only route and rename; deciding (policy, scopes, limits) and recording (telemetry) are steps."""

from __future__ import annotations

from typing import Any

from ...calls import Result
from ...jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, McpError
from ..exchange import Exchange


class Method:
    name: str = ""
    label: str | None = None  # the metric label of the method; None: its name (unknown methods: "_OTHER")
    plumbing: bool = False  # protocol plumbing (lists, discover, initialize, ping): no span unless asked
    reaches_upstream: bool = False  # a call served by an upstream: limits apply

    def route(self, exchange: Exchange) -> Result | None:
        """Find the call's target (`exchange.target`, or `exchange.listing` for a list); a Result stops the
        call here (an unknown name, bad parameters)."""
        return None

    def unknown(self, exchange: Exchange) -> Result:
        """The answer when the target does not exist for this caller (absent, or hidden by policy)."""
        name = exchange.target.name if exchange.target is not None else None
        return Result.failed(McpError(INVALID_PARAMS, f"Unknown target: {name}"))

    def refused(self, exchange: Exchange, rule: str, message: str) -> Result:
        """The answer when the policy refuses this call of a target the caller may see."""
        return Result.failed(McpError(INVALID_PARAMS, f"{message} (policy rule '{rule}')"))

    async def serve(self, exchange: Exchange) -> Result:
        raise NotImplementedError


class UnknownMethod(Method):
    """What the gateway does not serve (in the client's era): -32601, still traced and logged."""

    label = "_OTHER"  # a client's spelling never becomes a metric label

    def __init__(self, name: str, *, modern: bool) -> None:
        self.name = name
        self._modern = modern

    def route(self, exchange: Exchange) -> Result | None:
        if self._modern:  # the SDK's shape for 2026-07-28: the method as data
            return Result.failed(McpError(METHOD_NOT_FOUND, "Method not found", self.name))
        return Result.failed(McpError(METHOD_NOT_FOUND, f"Method not found: {self.name}"))


def string_param(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) else None
