"""`subscriptions/listen` (2026-07-28): which list changes and resource updates a client's stream gets.

The resource URIs it asks to watch are a listing like any other: made canonical, routed to their
upstreams, then narrowed by the same steps that narrow lists (policy, scopes), so a listen never watches
what the caller could not read. The honoured subset is watched upstream (each upstream told once, its
subscribes sent together); the conversation layer holds the stream and unwatches when it closes.
"""

from __future__ import annotations

from typing import Any

from ...calls import Result, Target
from ...catalog.catalog import Entry
from ...catalog.routing import ResourceRouter
from ...catalog.uris import NonCanonicalUri, canonical_uri
from ...jsonrpc import INVALID_PARAMS, McpError
from ...upstream.watches import ResourceWatches
from ..exchange import Exchange, ListView
from .base import Method

LISTEN_FLAGS = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}
SUBSCRIPTIONS = "resourceSubscriptions"


class Listen(Method):
    name = "subscriptions/listen"
    plumbing = True

    def __init__(self, router: ResourceRouter, watches: ResourceWatches, max_uris: int) -> None:
        self._router = router
        self._watches = watches
        self._max_uris = max_uris

    def route(self, exchange: Exchange) -> Result | None:
        wanted = exchange.call.params.get("notifications")
        if not isinstance(wanted, dict):
            return Result.failed(McpError(INVALID_PARAMS, "notifications must be an object"))
        uris = wanted.get(SUBSCRIPTIONS)
        if uris is not None and not isinstance(uris, list):
            return Result.failed(McpError(INVALID_PARAMS, f"{SUBSCRIPTIONS} must be an array of URIs"))
        if uris is not None and len(uris) > self._max_uris:
            return Result.failed(
                McpError(
                    INVALID_PARAMS, f"at most {self._max_uris} {SUBSCRIPTIONS} per listen (server.max_listen_uris)"
                )
            )
        exchange.target = Target("resources", None, listing=True)
        exchange.listing = ListView(candidates=self._candidates(uris or []) if uris is not None else None)
        return None

    def _candidates(self, uris: list[Any]) -> list[Entry]:
        found: dict[str, Entry] = {}
        for uri in uris:
            if not isinstance(uri, str):
                continue
            try:
                canonical = canonical_uri(uri)
            except NonCanonicalUri:
                continue  # not honoured: the acknowledgement lists what is watched
            routed = self._router.resolve(canonical)
            if routed is not None and canonical not in found:
                found[canonical] = Entry(canonical, routed[0], routed[1], {})
        return list(found.values())

    async def serve(self, exchange: Exchange) -> Result:
        wanted = exchange.call.params["notifications"]
        honored: dict[str, Any] = {flag: True for flag in LISTEN_FLAGS if wanted.get(flag) is True}
        listing = exchange.listing
        assert listing is not None
        if listing.candidates is not None:
            admitted = [entry.exposed for entry in listing.admitted(listing.candidates)]
            honored[SUBSCRIPTIONS] = sorted(await self._watches.watch_many(admitted))
        return Result({"notifications": honored})
