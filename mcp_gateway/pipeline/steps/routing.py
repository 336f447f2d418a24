"""Routing: the method's handler finds the call's target (a catalog entry, a resource's upstream, a list),
so every later step decides about the same thing the upstream will be asked about."""

from __future__ import annotations

from ...calls import Result
from ..chain import Next
from ..exchange import Exchange


class RouteStep:
    name = "route"

    async def __call__(self, exchange: Exchange, next: Next) -> Result:
        stopped = exchange.method.route(exchange)
        if stopped is not None:
            return stopped
        return await next(exchange)
