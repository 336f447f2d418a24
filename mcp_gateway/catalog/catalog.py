"""The federated catalog: every upstream's tools, prompts, resources and templates under exposed names.

Each upstream's listing is fetched whole (walking its pages) when it connects and when it says its
list changed. The merged view is an immutable `Snapshot` rebuilt on each change, so the hot path
(`tools/call` routing) is one dict lookup with no locks.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from mcp.shared.inbound import find_invalid_x_mcp_header, x_mcp_header_map

from ..jsonrpc import INVALID_PARAMS, McpError
from .curation import Curator
from .naming import Namer

log = logging.getLogger("mcp_gateway.catalog")

KINDS = ("tools", "prompts", "resources", "resourceTemplates")
# The field that names an item of each kind, in the upstream's wire format.
KEY_FIELD = {"tools": "name", "prompts": "name", "resources": "uri", "resourceTemplates": "uriTemplate"}


@dataclass(frozen=True, slots=True)
class Entry:
    exposed: str
    upstream: str
    original: str
    definition: dict[str, Any]  # as sent to clients
    # Tools whose arguments are mirrored in `Mcp-Param-*` headers (SEP-2243): argument path -> header.
    param_headers: dict[tuple[str, ...], str] | None = None
    scopes: frozenset[str] = frozenset()  # OAuth scopes a caller needs to use it (beyond its upstream's)


@dataclass(frozen=True, slots=True)
class Collision:
    kind: str
    exposed: str
    kept: str  # upstream whose item is exposed
    hidden: str  # upstream whose item is hidden

    def __str__(self) -> str:
        singular = {"resourceTemplates": "resource template"}.get(self.kind, self.kind.rstrip("s"))
        return (
            f"{singular} name '{self.exposed}' is offered by upstreams '{self.kept}' and '{self.hidden}'; "
            f"'{self.hidden}''s is hidden (set a prefix, rename it, or exclude it)"
        )


@dataclass(slots=True)
class UpstreamListing:
    """What one upstream offers, already curated and renamed."""

    items: dict[str, list[Entry]] = field(default_factory=lambda: {k: [] for k in KINDS})
    # Per kind, the upstream's caching hint (2026-07-28 `ttlMs`, private?); None: it gave none.
    cache: dict[str, CacheHint | None] = field(default_factory=lambda: dict.fromkeys(KINDS))


@dataclass(frozen=True, slots=True)
class CacheHint:
    ttl_ms: int
    private: bool

    @classmethod
    def of(cls, result: dict[str, Any]) -> CacheHint | None:
        """The hint a 2026-07-28 result carries, if any."""
        ttl = result.get("ttlMs")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            return None
        return cls(ttl, result.get("cacheScope") != "public")

    def merge(self, other: CacheHint | None) -> CacheHint:
        """Aggregate: the shortest TTL, and private if either side is."""
        if other is None:
            return self
        return CacheHint(min(self.ttl_ms, other.ttl_ms), self.private or other.private)


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    lists: dict[str, tuple[Entry, ...]]
    index: dict[str, dict[str, Entry]]
    collisions: tuple[Collision, ...] = ()
    # Per kind, the merged caching hints of the upstreams that gave one (None: none did).
    cache: dict[str, CacheHint | None] = field(default_factory=lambda: dict.fromkeys(KINDS))
    filtered: dict[tuple[str, Any], tuple[Entry, ...]] = field(default_factory=dict, compare=False)

    def lookup(self, kind: str, exposed: str) -> Entry | None:
        return self.index[kind].get(exposed)

    def page(
        self,
        kind: str,
        cursor: str | None,
        page_size: int,
        view: tuple[Any, Callable[[Entry], bool]] | None = None,
        shown: Callable[[Entry], dict[str, Any]] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a list; with a `view` (key, keep), only the entries `keep` admits (callers with
        the same key share one filtered list per snapshot, so their pages line up); `shown` gives an
        entry's definition as this caller sees it."""
        items = self.lists[kind] if view is None else self._view(kind, view[0], view[1])
        start = _decode_cursor(cursor, kind) if cursor else 0
        end = start + page_size
        next_cursor = _encode_cursor(kind, end) if end < len(items) else None
        if shown is None:
            return [entry.definition for entry in items[start:end]], next_cursor
        return [shown(entry) for entry in items[start:end]], next_cursor

    def _view(self, kind: str, key: Any, keep: Callable[[Entry], bool]) -> tuple[Entry, ...]:
        cache_key = (kind, key)
        filtered = self.filtered.get(cache_key)
        if filtered is None:
            filtered = tuple(entry for entry in self.lists[kind] if keep(entry))
            if len(self.filtered) >= 4096:
                self.filtered.clear()
            self.filtered[cache_key] = filtered
        return filtered


EMPTY = Snapshot(0, {k: () for k in KINDS}, {k: {} for k in KINDS})


class UpstreamView:
    """Turns one upstream's raw list items into catalog entries (curation + naming)."""

    def __init__(
        self,
        name: str,
        namer: Namer,
        curators: dict[str, Curator],
        tool_scopes: list[tuple[re.Pattern[str], frozenset[str]]] | None = None,
    ) -> None:
        self.name = name
        self.namer = namer
        self.curators = curators  # keyed "tools", "prompts", "resources"
        self.tool_scopes = tool_scopes or []  # (name glob, scopes), matched on the upstream's tool name

    def entries(self, kind: str, raw_items: Iterable[dict[str, Any]]) -> list[Entry]:
        curator = self.curators["resources" if kind == "resourceTemplates" else kind]
        key = KEY_FIELD[kind]
        out: list[Entry] = []
        for item in raw_items:
            original = item.get(key)
            if not isinstance(original, str) or not curator.admits(original):
                continue
            definition = dict(item)
            if kind in ("tools", "prompts"):
                exposed = self.namer.name(curator.rename.get(original, original))
            else:
                exposed = self.namer.uri(original)
            definition[key] = exposed
            if original in curator.descriptions:
                definition["description"] = curator.descriptions[original]
            param_headers = None
            if kind == "tools":
                self._rewrite_ui_meta(definition)
                schema = definition.get("inputSchema")
                if _mentions_header_annotation(schema):
                    problem = find_invalid_x_mcp_header(schema)
                    if problem is not None:
                        # SEP-2243: clients MUST drop a tool whose annotation is invalid.
                        log.warning("upstream %s: tool %r dropped: %s", self.name, original, problem)
                        continue
                    param_headers = x_mcp_header_map(schema) or None
            scopes = frozenset().union(*(req for glob, req in self.tool_scopes if glob.match(original)))
            out.append(
                Entry(
                    exposed, self.name, original, definition, param_headers, scopes if kind == "tools" else frozenset()
                )
            )
        return out

    def _rewrite_ui_meta(self, tool: dict[str, Any]) -> None:
        # MCP Apps: a tool's `_meta.ui.resourceUri` names a ui:// resource of the same upstream.
        meta = tool.get("_meta")
        if not isinstance(meta, dict) or not self.namer.prefix:
            return
        ui = meta.get("ui")
        if isinstance(ui, dict) and isinstance(ui.get("resourceUri"), str):
            tool["_meta"] = {**meta, "ui": {**ui, "resourceUri": self.namer.uri(ui["resourceUri"])}}
        if isinstance(meta.get("ui/resourceUri"), str):  # the extension's older flat key
            tool["_meta"] = {**tool["_meta"], "ui/resourceUri": self.namer.uri(meta["ui/resourceUri"])}


class Catalog:
    def __init__(self, upstream_order: list[str]) -> None:
        self._order = upstream_order
        self._listings: dict[str, UpstreamListing] = {}
        self.snapshot: Snapshot = EMPTY
        self._reported: set[Collision] = set()

    def set_listing(self, upstream: str, kind: str, entries: list[Entry], cache: CacheHint | None = None) -> None:
        listing = self._listings.setdefault(upstream, UpstreamListing())
        listing.items[kind] = entries
        listing.cache[kind] = cache
        self._rebuild()

    def drop(self, upstream: str) -> None:
        if self._listings.pop(upstream, None) is not None:
            self._rebuild()

    def _rebuild(self) -> None:
        lists: dict[str, list[Entry]] = {k: [] for k in KINDS}
        index: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        collisions: list[Collision] = []
        cache: dict[str, CacheHint | None] = dict.fromkeys(KINDS)
        for upstream in self._order:
            listing = self._listings.get(upstream)
            if listing is None:
                continue
            for kind in KINDS:
                hint = listing.cache.get(kind)
                if hint is not None:
                    cache[kind] = hint.merge(cache[kind])
                seen = index[kind]
                for entry in listing.items[kind]:
                    first = seen.get(entry.exposed)
                    if first is not None:
                        if first.upstream != entry.upstream:
                            collisions.append(Collision(kind, entry.exposed, first.upstream, entry.upstream))
                        continue
                    seen[entry.exposed] = entry
                    lists[kind].append(entry)
        for collision in collisions:
            if collision not in self._reported:
                log.warning("name collision: %s", collision)
                self._reported.add(collision)
        self.snapshot = Snapshot(
            self.snapshot.version + 1,
            {k: tuple(v) for k, v in lists.items()},
            index,
            tuple(collisions),
            cache,
        )


def _mentions_header_annotation(schema: Any) -> bool:
    # Cheap pre-check so the schema walk only runs for the rare tools that use SEP-2243 headers.
    return isinstance(schema, dict) and b"x-mcp-header" in orjson.dumps(schema)


def _encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, offset])).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, kind: str) -> int:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        cursor_kind, offset = decoded
        if cursor_kind == kind and isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise McpError(INVALID_PARAMS, "invalid cursor")
