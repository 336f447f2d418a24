"""Resource subscriptions towards upstreams: one upstream watch per URI, however many clients watch it.

Clients subscribe per session (`resources/subscribe`) or per listen stream (`subscriptions/listen`
with `resourceSubscriptions`); the upstream is told once, when the first client starts watching a URI,
and again when the last one stops. A handshake-era upstream gets `resources/subscribe`; a 2026-07-28
upstream gets the URI added to the gateway's listen stream. Watches survive upstream reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from ..jsonrpc import McpError
from .pool import UpstreamHandle, UpstreamPool

log = logging.getLogger("mcp_gateway.upstream")

Resolver = Callable[[str], tuple[str, str] | None]  # exposed URI -> (upstream, upstream's URI)


class ResourceWatches:
    def __init__(self, pool: UpstreamPool, resolve: Resolver) -> None:
        self._pool = pool
        self._resolve = resolve
        self._counts: dict[str, int] = {}
        self._targets: dict[str, tuple[str, str]] = {}
        pool.events.on_up(self._restore)

    def __contains__(self, uri: str) -> bool:
        return uri in self._counts

    async def watch(self, uri: str) -> bool:
        """Start watching `uri` (an exposed, canonical URI); False when no upstream serves it."""
        count = self._counts.get(uri, 0)
        if count:
            self._counts[uri] = count + 1
            return True
        target = self._resolve(uri)
        if target is None:
            return False
        self._targets[uri] = target
        self._counts[uri] = 1
        await self._tell_upstream(target[0])
        return True

    async def watch_many(self, uris: Iterable[str]) -> list[str]:
        """Start watching several URIs at once; each upstream is told once, and its subscribes go out
        together. Returns the URIs an upstream serves (the others are not watched)."""
        watched: list[str] = []
        told: set[str] = set()
        for uri in uris:
            count = self._counts.get(uri, 0)
            if not count:
                target = self._resolve(uri)
                if target is None:
                    continue
                self._targets[uri] = target
                told.add(target[0])
            self._counts[uri] = count + 1
            watched.append(uri)
        await asyncio.gather(*(self._tell_upstream(upstream) for upstream in told))
        return watched

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

    async def _restore(self, handle: UpstreamHandle) -> None:
        """A (re)connected upstream session knows nothing of earlier watches: tell it again."""
        if any(target[0] == handle.name for target in self._targets.values()):
            await self._tell_upstream(handle.name)

    async def _tell_upstream(self, upstream: str, removed: str | None = None) -> None:
        handle = self._pool.get(upstream)
        session = handle.session if handle is not None else None
        if session is None:
            return  # told on reconnect (_restore)
        watched = {original for name, original in self._targets.values() if name == upstream}
        if session.modern:
            session.watch_resources(watched)
            return
        if not (session.capabilities.get("resources") or {}).get("subscribe"):
            return
        if removed is not None:
            try:
                await session.request("resources/unsubscribe", {"uri": removed})
            except McpError as exc:
                log.warning("upstream %s: resource unsubscribe failed: %s", upstream, exc.message)
            session.subscribed.discard(removed)
            return
        new = list(watched - session.subscribed)
        session.subscribed.update(new)  # claimed first: a concurrent tell does not subscribe them again
        results = await asyncio.gather(
            *(session.request("resources/subscribe", {"uri": original}) for original in new), return_exceptions=True
        )
        for original, outcome in zip(new, results, strict=True):
            if isinstance(outcome, McpError):
                session.subscribed.discard(original)
                log.warning("upstream %s: resource subscribe failed: %s", upstream, outcome.message)
            elif isinstance(outcome, BaseException):
                session.subscribed.discard(original)
                raise outcome
