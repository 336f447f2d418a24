"""Catalog entries built from raw upstream items: curation, renames, MCP Apps metadata, collisions, cursors."""

from __future__ import annotations

import pytest

from mcp_gateway.catalog.catalog import Catalog, UpstreamView
from mcp_gateway.catalog.curation import Curator
from mcp_gateway.catalog.naming import Namer
from mcp_gateway.config import ToolCuration
from mcp_gateway.jsonrpc import McpError


def view(name: str, prefix: str | None, **tools: object) -> UpstreamView:
    curators = {k: Curator.from_config(ToolCuration()) for k in ("tools", "prompts", "resources")}
    curators["tools"] = Curator.from_config(ToolCuration(**tools))  # type: ignore[arg-type]
    return UpstreamView(name, Namer(prefix), curators)


def test_mcp_apps_ui_resource_uri_is_namespaced_like_the_resource():
    apps = view("apps", "apps")
    [tool] = apps.entries(
        "tools", [{"name": "chart", "inputSchema": {}, "_meta": {"ui": {"resourceUri": "ui://chart/app.html"}}}]
    )
    [resource] = apps.entries("resources", [{"uri": "ui://chart/app.html", "mimeType": "text/html;profile=mcp-app"}])
    assert tool.definition["_meta"]["ui"]["resourceUri"] == resource.exposed == "ui://apps__chart/app.html"


def test_vendor_fields_pass_through_untouched():
    [tool] = view("v", "v").entries(
        "tools", [{"name": "t", "inputSchema": {}, "x-vendor": {"a": 1}, "annotations": {"readOnlyHint": True}}]
    )
    assert tool.definition["x-vendor"] == {"a": 1} and tool.definition["annotations"] == {"readOnlyHint": True}


def test_snapshot_pages_and_rejects_foreign_cursors():
    catalog = Catalog(["a"])
    catalog.set_listing("a", "tools", view("a", "a").entries("tools", [{"name": f"t{i}"} for i in range(5)]))
    items, cursor = catalog.snapshot.page("tools", None, 2)
    assert [i["name"] for i in items] == ["a__t0", "a__t1"] and cursor
    items, cursor = catalog.snapshot.page("tools", cursor, 2)
    assert [i["name"] for i in items] == ["a__t2", "a__t3"]
    items, cursor = catalog.snapshot.page("tools", cursor, 2)
    assert [i["name"] for i in items] == ["a__t4"] and cursor is None
    _, prompts_cursor = Catalog(["a"]).snapshot.page("prompts", None, 1)
    with pytest.raises(McpError):
        catalog.snapshot.page("tools", "bogus", 2)
    assert prompts_cursor is None


def test_caching_hints_aggregate_to_the_shortest_ttl_and_private_wins():
    from mcp_gateway.catalog.catalog import CacheHint, Catalog

    assert CacheHint.of({"ttlMs": 5000, "cacheScope": "public"}) == CacheHint(5000, False)
    assert CacheHint.of({"ttlMs": 10}) == CacheHint(10, True)  # no scope stated: not shareable
    assert CacheHint.of({}) is None and CacheHint.of({"ttlMs": -1}) is None and CacheHint.of({"ttlMs": True}) is None
    catalog = Catalog(["a", "b", "c"])
    catalog.set_listing("a", "tools", [], CacheHint(60_000, False))
    catalog.set_listing("b", "tools", [], CacheHint(5_000, False))
    catalog.set_listing("c", "tools", [], None)  # a handshake-era upstream states nothing
    assert catalog.snapshot.cache["tools"] == CacheHint(5_000, False)
    catalog.set_listing("c", "tools", [], CacheHint(120_000, True))
    assert catalog.snapshot.cache["tools"] == CacheHint(5_000, True)
    catalog.drop("b")
    assert catalog.snapshot.cache["tools"] == CacheHint(60_000, True)
