"""OAuth scopes per upstream (`required_scopes`) and per tool (`tool_scopes`). An upstream whose scopes the
caller lacks is absent from its lists; using it, or a tool needing more, is a 403 that names every scope
the operation needs, so the client can step up (MCP authorization, "Scope challenge handling").
Runs after the policy: what the policy hides stays unknown, rather than revealing the scope it needs."""

from __future__ import annotations

from ...calls import Result, ScopeRefusal
from ...catalog.catalog import Entry
from ..chain import Next
from ..exchange import Exchange

_MAX_REMEMBERED = 1024  # distinct scope sets remembered (callers hold few distinct sets)


class ScopesStep:
    name = "scopes"

    def __init__(self, required: frozenset[str], upstream_scopes: dict[str, frozenset[str]]) -> None:
        self._required = required  # what every caller needs (named in challenges too)
        self._upstream_scopes = upstream_scopes
        self._hidden_by_scopes: dict[frozenset[str], frozenset[str]] = {}

    async def __call__(self, exchange: Exchange, next: Next) -> Result:
        target = exchange.target
        if target is None:
            return await next(exchange)
        scopes = exchange.call.principal.scopes
        if exchange.listing is not None:
            hidden = self._hidden(scopes)
            if hidden:

                def keep(entry: Entry) -> bool:
                    return entry.upstream not in hidden

                exchange.listing.hide_unless(("scopes", hidden), keep)
            return await next(exchange)
        needed = self._upstream_scopes.get(target.upstream or "", frozenset()) | target.scopes
        if needed and not needed <= scopes:
            missing = " ".join(sorted(needed - scopes))
            return Result.failed(ScopeRefusal(needed | self._required, f"this needs the scope(s): {missing}"))
        return await next(exchange)

    def _hidden(self, scopes: frozenset[str]) -> frozenset[str]:
        """Upstreams whose scopes a caller with `scopes` lacks."""
        hidden = self._hidden_by_scopes.get(scopes)
        if hidden is None:
            hidden = frozenset(name for name, needed in self._upstream_scopes.items() if not needed <= scopes)
            if len(self._hidden_by_scopes) < _MAX_REMEMBERED:
                self._hidden_by_scopes[scopes] = hidden
        return hidden
