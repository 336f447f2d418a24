"""Policy: one decision for lists and calls. A target the caller may not use is absent from its lists and
unknown to its calls; a call refused only by a condition on its arguments is told which rule refused it."""

from __future__ import annotations

import logging

import orjson

from ...calls import Result
from ...catalog.catalog import Entry
from ...policy import CurrentPolicy, PolicyEngine
from ...policy.views import curated
from ..chain import Next
from ..exchange import Exchange, ListView

audit = logging.getLogger("mcp_gateway.audit")


class PolicyStep:
    name = "policy"

    def __init__(self, policy: CurrentPolicy) -> None:
        self._policy = policy

    async def __call__(self, exchange: Exchange, next: Next) -> Result:
        engine = self._policy.engine
        target = exchange.target
        if engine is None or target is None:
            return await next(exchange)
        if exchange.listing is not None:
            _narrow(exchange, exchange.listing, engine)
            return await next(exchange)
        if target.name is None:
            return await next(exchange)
        principal = exchange.call.principal
        decision = engine.decide(principal, target.kind, target.name, target.upstream, target.arguments)
        if decision.allowed:
            return await next(exchange)
        record = {
            "event": "deny",
            "tenant": principal.tenant,
            "subject": principal.subject,
            "kind": target.kind,
            "target": target.name[:512],
            "upstream": target.upstream,
            "rule": decision.rule,
            "reason": decision.message,
        }
        audit.info("%s", orjson.dumps(record).decode())
        if not decision.visible:
            return exchange.method.unknown(exchange)
        return exchange.method.refused(exchange, decision.rule or "policy", decision.message)


def _narrow(exchange: Exchange, listing: ListView, engine: PolicyEngine) -> None:
    principal = exchange.call.principal
    kind = exchange.target.kind if exchange.target is not None else ""

    def keep(entry: Entry) -> bool:
        return engine.visible(principal, kind, entry.exposed, entry.upstream)

    listing.hide_unless(("policy", engine.version, engine.caller_key(principal)), keep)
    if kind != "tools":
        return
    views, _ = engine.tool_views(principal.tenant)
    if views:

        def shown(entry: Entry) -> dict:
            view = views.get(entry.exposed)
            return entry.definition if view is None else curated(entry.definition, view)

        listing.shown = shown
