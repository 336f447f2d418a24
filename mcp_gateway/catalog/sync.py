"""Keeps the federated catalog in step with the upstreams.

An upstream that connects is listed (every page), one that goes is dropped, and one that says a list
changed is listed again, with bursts of notifications coalesced into as few walks as needed. Those events
are shared with the gateway's other processes through the state backend, and every client-bound change
goes to the listeners (the fronts' notification fan-out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..jsonrpc import McpError
from ..state import StateBackend
from ..upstream.events import UpstreamEvents
from ..upstream.pool import UpstreamHandle
from .catalog import KINDS, CacheHint, Catalog, Entry, UpstreamView

log = logging.getLogger("mcp_gateway.catalog")

_LIST_METHOD = {
    "tools": "tools/list",
    "prompts": "prompts/list",
    "resources": "resources/list",
    "resourceTemplates": "resources/templates/list",
}
_CAPABILITY_OF = {"tools": "tools", "prompts": "prompts", "resources": "resources", "resourceTemplates": "resources"}
CHANGED_KINDS = {
    "notifications/tools/list_changed": ("tools",),
    "notifications/prompts/list_changed": ("prompts",),
    "notifications/resources/list_changed": ("resources", "resourceTemplates"),
}
_MAX_UPSTREAM_PAGES = 1000
# Client-bound notifications of one kind (and resource) within this window go out once: an upstream that sends
# thousands of list changes makes each client re-list once per window, not thousands of times.
COALESCE_SECONDS = 0.1
_STORM_REPORT_SECONDS = 60.0

# Receives client-bound notifications not tied to a call: (method, params, resource URI or None).
ChangeListener = Callable[[str, dict[str, Any], str | None], Awaitable[None]]


class CatalogSync:
    def __init__(
        self, catalog: Catalog, views: dict[str, UpstreamView], backend: StateBackend, events: UpstreamEvents
    ) -> None:
        self.catalog = catalog
        self.views = views
        self.backend = backend
        self._listeners: list[ChangeListener] = []
        self._connected: dict[str, UpstreamHandle] = {}  # upstreams with a session, for remote list changes
        self._refresh_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._stale: dict[tuple[str, str], bool] = {}
        self._pending: dict[tuple[str, str | None], asyncio.Task[None]] = {}  # announcements not yet sent
        self._announcing: set[asyncio.Task[None]] = set()  # until they are sent (tasks need a strong reference)
        self._absorbed: dict[str, int] = {}  # per upstream: notifications folded into one since the last report
        self._reported_at = 0.0
        events.on_up(self._upstream_up)
        events.on_down(self._upstream_down)
        events.on_notification(self._upstream_notified)
        backend.on("upstream-event", self._on_remote_upstream_event)

    def on_change(self, listener: ChangeListener) -> None:
        """Be told of every client-bound change (a list changed, a watched resource was updated)."""
        self._listeners.append(listener)

    async def _upstream_up(self, handle: UpstreamHandle) -> None:
        self._connected[handle.name] = handle
        await asyncio.gather(*(self._refresh(handle, kind) for kind in KINDS))
        await self.broadcast_all_changed()

    async def _upstream_down(self, handle: UpstreamHandle) -> None:
        self._connected.pop(handle.name, None)
        self.catalog.drop(handle.name)
        await self.broadcast_all_changed()

    async def broadcast_all_changed(self) -> None:
        """Tell every client its lists may have changed (an upstream came or went, a new policy)."""
        for method in CHANGED_KINDS:
            await self.broadcast(method, {}, None)

    async def _upstream_notified(self, handle: UpstreamHandle, method: str, params: dict[str, Any]) -> None:
        if method not in CHANGED_KINDS and method != "notifications/resources/updated":
            return
        await self._apply_upstream_event(handle.name, method, params)
        # Other processes hold their own upstream sessions, which may not hear of it: tell them.
        await self.backend.broadcast("upstream-event", {"upstream": handle.name, "method": method, "params": params})

    async def _on_remote_upstream_event(self, message: dict[str, Any]) -> None:
        upstream, method, params = message.get("upstream"), message.get("method"), message.get("params")
        if upstream in self.views and isinstance(method, str) and isinstance(params, dict):
            await self._apply_upstream_event(upstream, method, params)
        return None

    async def _apply_upstream_event(self, upstream: str, method: str, params: dict[str, Any]) -> None:
        kinds = CHANGED_KINDS.get(method)
        if kinds is not None:
            handle = self._connected.get(upstream)
            if handle is not None and handle.session is not None:
                await asyncio.gather(*(self._refresh(handle, kind) for kind in kinds))
            self._announce(upstream, method, {}, None)  # after the walk: clients re-list what it found
        elif isinstance(params.get("uri"), str):
            exposed = self.views[upstream].namer.uri(params["uri"])
            self._announce(upstream, method, {**params, "uri": exposed}, exposed)

    def _announce(self, upstream: str, method: str, params: dict[str, Any], uri: str | None) -> None:
        """Tell clients, once per `COALESCE_SECONDS` for the same notification (and resource)."""
        key = (method, uri)
        if key in self._pending:
            self._absorbed[upstream] = self._absorbed.get(upstream, 0) + 1
            self._report_storm()
            return
        task = asyncio.get_running_loop().create_task(self._announce_later(key, params))
        self._pending[key] = task
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def _announce_later(self, key: tuple[str, str | None], params: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(COALESCE_SECONDS)
        finally:
            self._pending.pop(key, None)
        await self.broadcast(key[0], params, key[1])

    def _report_storm(self) -> None:
        now = time.monotonic()
        if now - self._reported_at < _STORM_REPORT_SECONDS:
            return
        self._reported_at = now
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(self._absorbed.items()))
        log.warning("upstream notification storm: %s notification(s) folded into fewer for clients", counts)
        self._absorbed.clear()

    async def broadcast(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        for listener in self._listeners:
            try:
                await listener(method, params, uri)
            except Exception:
                log.exception("change listener failed")

    async def _refresh(self, handle: UpstreamHandle, kind: str) -> None:
        """Re-list one kind of one upstream; bursts of list changes coalesce into as few walks as needed."""
        key = (handle.name, kind)
        self._stale[key] = True
        async with self._refresh_locks.setdefault(key, asyncio.Lock()):
            if not self._stale.get(key):
                return  # a walk that started after our notification already covered it
            self._stale[key] = False
            await self._walk(handle, kind)

    async def _walk(self, handle: UpstreamHandle, kind: str) -> None:
        session = handle.session
        if session is None or _CAPABILITY_OF[kind] not in session.capabilities:
            self.catalog.set_listing(handle.name, kind, [])
            return
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        cache: CacheHint | None = None
        for _ in range(_MAX_UPSTREAM_PAGES):
            params = {"cursor": cursor} if cursor else {}
            try:
                result = await handle.request(_LIST_METHOD[kind], params)
            except McpError as exc:
                log.warning("upstream %s: %s failed: %s", handle.name, _LIST_METHOD[kind], exc.message)
                break
            cache = CacheHint.of(result) if cache is None else cache.merge(CacheHint.of(result))
            page = result.get(kind)
            if isinstance(page, list):
                items.extend(item for item in page if isinstance(item, dict))
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor or cursor in seen_cursors:
                break
            seen_cursors.add(cursor)
        entries: list[Entry] = self.views[handle.name].entries(kind, items)
        self.catalog.set_listing(handle.name, kind, entries, cache)
