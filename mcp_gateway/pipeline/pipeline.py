"""`Pipeline`: every call, from every front, through the same chain of steps to its method's handler."""

from __future__ import annotations

from collections.abc import Sequence

from ..calls import Call, Result
from ..jsonrpc import McpError
from .chain import Step, compose
from .exchange import Exchange
from .methods import MethodTable


class Pipeline:
    def __init__(self, steps: Sequence[Step], methods: MethodTable) -> None:
        self.steps = tuple(steps)
        self._methods = methods
        self._run = compose(self.steps, _serve)

    async def run(self, call: Call) -> Result:
        """What happened to `call`. Never raises but for cancellation: errors come back in the Result."""
        exchange = Exchange(call, self._methods.lookup(call))
        result = await self._run(exchange)
        if result.target is None and exchange.target is not None:
            result.target = exchange.target.name
        payload = result.payload
        if payload is not None and call.client.modern and "resultType" not in payload:
            payload["resultType"] = "complete"  # 2026-07-28: every result says what it is
        return result


async def _serve(exchange: Exchange) -> Result:
    try:
        return await exchange.method.serve(exchange)
    except McpError as error:  # a handler's refusal deep down (a bad cursor): the client's error, not ours
        return Result.failed(error)
