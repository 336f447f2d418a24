"""Limits: a call that reaches an upstream is admitted under the policy's rate and concurrency limits, and
gives its slots back when its work ends — when it is answered, or, for a call parked waiting for the
client's input, when the parked call ends (so a parked call keeps counting against `concurrency`)."""

from __future__ import annotations

from collections.abc import Callable

from ...calls import Call, Result
from ...jsonrpc import McpError
from ...limits import Limiter
from ..chain import Next
from ..exchange import Exchange


class LimitsStep:
    name = "limits"

    def __init__(self, limiter: Limiter, resumes: Callable[[Call], bool]) -> None:
        self._limiter = limiter
        self._resumes = resumes  # a retry resuming a parked call: that call already holds its slots

    async def __call__(self, exchange: Exchange, next: Next) -> Result:
        target = exchange.target
        call = exchange.call
        if not exchange.method.reaches_upstream or target is None or target.name is None or self._resumes(call):
            return await next(exchange)
        try:
            admission = await self._limiter.admit(call.principal, target.kind, target.name, target.upstream)
        except McpError as refused:
            return Result.failed(refused)
        if not admission.holds:
            return await next(exchange)
        try:
            result = await next(exchange)
        except BaseException:
            await admission.release()
            raise
        if result.continues is not None and not result.continues.done():
            admission.release_when_done(result.continues)
        else:
            await admission.release()
        return result
