"""Resource subscriptions towards upstreams: one upstream watch per URI, however many clients watch it.

Clients subscribe per session (`resources/subscribe`) or per listen stream (`subscriptions/listen`
with `resourceSubscriptions`); the upstream is told once, when the first client starts watching a URI,
and again when the last one stops. A handshake-era upstream gets `resources/subscribe`; a 2026-07-28
upstream gets the URI added to the gateway's listen stream. Watches survive upstream reconnects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..jsonrpc import McpError
from ..upstream.pool import UpstreamPool

log = logging.getLogger("mcp_gateway.core")

Resolver = Callable[[str], tuple[str, str]]  # exposed URI -> (upstream, upstream's URI); raises McpError


class ResourceWatches:
    def __init__(self, pool: UpstreamPool, resolve: Resolver) -> None:
        self._pool = pool
        self._resolve = resolve
        self._counts: dict[str, int] = {}
        self._targets: dict[str, tuple[str, str]] = {}

    def __contains__(self, uri: str) -> bool:
        return uri in self._counts

    async def watch(self, uri: str) -> None:
        """Start watching `uri` (an exposed URI); unknown URIs raise `McpError`."""
        count = self._counts.get(uri, 0)
        if count == 0:
            target = self._resolve(uri)
            self._targets[uri] = target
            self._counts[uri] = 1
            await self._tell_upstream(target[0])
        else:
            self._counts[uri] = count + 1

    async def unwatch(self, uri: str) -> None:
        count = self._counts.get(uri, 0)
        if count <= 0:
            return
        if count > 1:
            self._counts[uri] = count - 1
            return
        del self._counts[uri]
        target = self._targets.pop(uri)
        await self._tell_upstream(target[0], removed=target[1])

    async def restore(self, upstream: str) -> None:
        """A (re)connected upstream session knows nothing of earlier watches: tell it again."""
        if any(target[0] == upstream for target in self._targets.values()):
            await self._tell_upstream(upstream)

    async def _tell_upstream(self, upstream: str, removed: str | None = None) -> None:
        handle = self._pool.get(upstream)
        session = handle.session if handle is not None else None
        if session is None:
            return  # told on reconnect (restore)
        watched = {original for name, original in self._targets.values() if name == upstream}
        if session.modern:
            session.watch_resources(watched)
            return
        if not (session.capabilities.get("resources") or {}).get("subscribe"):
            return
        try:
            if removed is not None:
                await session.request("resources/unsubscribe", {"uri": removed})
            else:
                for original in watched - session.subscribed:
                    await session.request("resources/subscribe", {"uri": original})
                    session.subscribed.add(original)
        except McpError as exc:
            log.warning("upstream %s: resource subscription change failed: %s", upstream, exc.message)
        if removed is not None:
            session.subscribed.discard(removed)
