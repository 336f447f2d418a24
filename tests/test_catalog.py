"""The federated catalog as a client sees it: pagination, list changes, collisions, long names, curation."""

from __future__ import annotations

import re
import time

import anyio
import pytest

from tests.support.client import CLIENT_ERAS, all_tools, connect, echo_of

pytestmark = pytest.mark.anyio

VALID_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


async def test_pagination_walks_every_page_of_three_upstreams_in_a_stable_order(upstreams, gateway, tmp_path):
    config: dict = {"server": {"page_size": 7}, "upstreams": {}}
    for name in ("one", "two", "three"):
        _, url = upstreams("--name", name, "--tools", "10", "--no-special-tools", "--page-size", "3")
        config["upstreams"][name] = {"transport": "streamable_http", "url": url}
    gw = gateway(config, upstreams_ready=3)
    async with connect(gw.url) as client:
        first = await client.list_tools()
        assert len(first.tools) == 7 and first.next_cursor
        names = [t.name for t in await all_tools(client)]
        # Config order, then each upstream's own order; every page of every upstream was walked.
        assert names == [f"{u}__tool_{i}" for u in ("one", "two", "three") for i in range(10)]
        assert names == [t.name for t in await all_tools(client)]  # deterministic
        with pytest.raises(Exception, match="invalid cursor"):
            await client.list_tools(cursor="not-a-gateway-cursor")


@pytest.mark.parametrize("client_era", CLIENT_ERAS)
async def test_upstream_list_changed_refreshes_the_catalog_and_reaches_the_client(upstreams, gateway, client_era):
    _, url = upstreams("--name", "dyn", "--tools", "1")
    gw = gateway({"upstreams": {"dyn": {"transport": "streamable_http", "url": url}}}, upstreams_ready=1)
    changed = anyio.Event()

    async def on_message(message) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()

    async with connect(gw.url, client_era, message_handler=on_message) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        assert "dyn__dyn_0" not in before
        if client_era == "legacy":
            await anyio.sleep(0.3)  # let the client's GET stream open
            await client.call_tool("dyn__add_tool", {})
            with anyio.fail_after(10):
                await changed.wait()
        else:
            async with client.listen(tools_list_changed=True) as subscription:
                assert subscription.honored.tools_list_changed
                await client.call_tool("dyn__add_tool", {})
                with anyio.fail_after(10):
                    async for _event in subscription:
                        break
        after = {t.name for t in (await client.list_tools()).tools}
        assert after - before == {"dyn__dyn_0"}
        assert echo_of(await client.call_tool("dyn__dyn_0", {"n": 1}))["tool"] == "dyn_0"


async def test_name_collisions_are_reported_and_the_first_upstream_wins(upstreams, gateway):
    _, a_url = upstreams("--name", "a", "--tools", "0", "--no-special-tools", "--tool-name", "search")
    _, b_url = upstreams("--name", "b", "--tools", "0", "--no-special-tools", "--tool-name", "search")
    gw = gateway(
        {
            "upstreams": {
                "a": {"transport": "streamable_http", "url": a_url, "prefixing": False},
                "b": {"transport": "streamable_http", "url": b_url, "prefixing": False},
            }
        },
        upstreams_ready=2,
    )
    ready = gw.readyz()
    assert ready["collisions"] == [
        "tool name 'search' is offered by upstreams 'a' and 'b'; 'b''s is hidden (set a prefix, rename it, or exclude it)"
    ]
    assert any("name collision" in line and "'search'" in line for line in gw.proc.output)
    async with connect(gw.url) as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["search"]
        assert echo_of(await client.call_tool("search", {}))["server"] == "a"


async def test_long_and_invalid_names_are_shortened_deterministically_and_still_route(upstreams, gateway):
    long_name = "retrieve_the_quarterly_financial_statements_for_the_selected_business_unit"
    odd_name = "files/read file"
    _, url = upstreams(
        "--name", "accounting", "--tools", "0", "--no-special-tools", "--tool-name", long_name, "--tool-name", odd_name
    )
    config = {"upstreams": {"accounting_department": {"transport": "streamable_http", "url": url}}}
    gw = gateway(config, upstreams_ready=1)
    async with connect(gw.url) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert len(names) == 2
        for name in names:
            assert VALID_TOOL_NAME.match(name) and len(name) <= 64, name
        long_exposed = next(n for n in names if n.startswith("accounting_department__retrieve"))
        odd_exposed = next(n for n in names if n != long_exposed)
        assert echo_of(await client.call_tool(long_exposed, {}))["tool"] == long_name
        assert echo_of(await client.call_tool(odd_exposed, {}))["tool"] == odd_name
    # Same names after a restart: shortening is a pure function of the names.
    gw.stop()
    again = gateway(config, upstreams_ready=1)
    async with connect(again.url) as client:
        assert sorted(t.name for t in (await client.list_tools()).tools) == sorted(names)


async def test_curation_include_exclude_rename_and_description(upstreams, gateway, tmp_path):
    _, url = upstreams("--name", "cur", "--tools", "4", "--no-special-tools")
    gw = gateway(
        {
            "naming": {"separator": "."},
            "upstreams": {
                "cur": {
                    "transport": "streamable_http",
                    "url": url,
                    "prefix": "c",
                    "tools": {
                        "include": ["tool_*"],
                        "exclude": ["tool_3"],
                        "rename": {"tool_0": "first"},
                        "descriptions": {"tool_1": "The second tool."},
                    },
                }
            },
        },
        upstreams_ready=1,
    )
    async with connect(gw.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert sorted(tools) == ["c.first", "c.tool_1", "c.tool_2"]
        assert tools["c.tool_1"].description == "The second tool."
        assert echo_of(await client.call_tool("c.first", {}))["tool"] == "tool_0"
        with pytest.raises(Exception, match="Unknown tool"):
            await client.call_tool("c.tool_3", {})
    _ = time
