"""Methods the gateway answers itself: `initialize`, `server/discover`, `ping`, `logging/setLevel`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...calls import Result
from ...jsonrpc import INVALID_PARAMS, McpError
from ...version import LOG_LEVELS
from ..exchange import Exchange
from .base import Method


class Initialize(Method):
    """The handshake-era `initialize`: the conversation layer opens the session once this succeeds."""

    name = "initialize"
    plumbing = True

    def __init__(self, answer: Callable[[str], dict[str, Any]]) -> None:
        self._answer = answer

    async def serve(self, exchange: Exchange) -> Result:
        return Result(self._answer(exchange.call.client.protocol_version))


class Discover(Method):
    name = "server/discover"
    plumbing = True

    def __init__(self, answer: Callable[[], dict[str, Any]]) -> None:
        self._answer = answer

    async def serve(self, exchange: Exchange) -> Result:
        return Result(self._answer())


class Ping(Method):
    name = "ping"
    plumbing = True

    async def serve(self, exchange: Exchange) -> Result:
        return Result({})


class SetLevel(Method):
    """`logging/setLevel`: the level is the session's, so the conversation layer records it on success."""

    name = "logging/setLevel"
    plumbing = True

    def route(self, exchange: Exchange) -> Result | None:
        if exchange.call.params.get("level") not in LOG_LEVELS:
            return Result.failed(McpError(INVALID_PARAMS, f"level must be one of {', '.join(LOG_LEVELS)}"))
        return None

    async def serve(self, exchange: Exchange) -> Result:
        return Result({})
