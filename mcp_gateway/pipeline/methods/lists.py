"""`tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`: a page of the federated
catalog as this caller may see it (the steps before narrow `exchange.listing`)."""

from __future__ import annotations

from typing import Any

from ...calls import Result, Target
from ...catalog.catalog import CacheHint, Catalog
from ...jsonrpc import INVALID_PARAMS, McpError
from ..exchange import Exchange, ListView
from .base import Method

LIST_KINDS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}


class ListItems(Method):
    plumbing = True

    def __init__(self, method: str, catalog: Catalog, page_size: int, default_cache: CacheHint) -> None:
        self.name = method
        self.kind = LIST_KINDS[method]
        self._catalog = catalog
        self._page_size = page_size
        self._default_cache = default_cache

    def route(self, exchange: Exchange) -> Result | None:
        cursor = exchange.call.params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            return Result.failed(McpError(INVALID_PARAMS, "cursor must be a string"))
        exchange.target = Target(self.kind, None, listing=True)
        exchange.listing = ListView()
        return None

    async def serve(self, exchange: Exchange) -> Result:
        listing = exchange.listing
        assert listing is not None
        snapshot = self._catalog.snapshot
        items, next_cursor = snapshot.page(
            self.kind, exchange.call.params.get("cursor"), self._page_size, listing.filter(), listing.shown
        )
        payload: dict[str, Any] = {self.kind: items}
        if next_cursor is not None:
            payload["nextCursor"] = next_cursor
        if exchange.call.client.modern:
            hint = self._default_cache.merge(snapshot.cache[self.kind])
            payload["ttlMs"] = hint.ttl_ms
            payload["cacheScope"] = "private" if hint.private else "public"
        return Result(payload)
