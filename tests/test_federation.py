"""Federation through a real gateway process: upstreams over all three transports, one client.

Upstreams are tests/support/scripted_server.py processes; the client is the `mcp` SDK's.
"""

from __future__ import annotations

import pytest

from tests.support.client import all_tools, connect, echo_of
from tests.support.processes import scripted_stdio_args

pytestmark = pytest.mark.anyio


async def test_tools_of_every_transport_are_listed_namespaced_and_callable(upstreams, gateway):
    _, alpha_url = upstreams("--name", "alpha", "--tools", "2", "--no-special-tools")
    _, beta_url = upstreams("--name", "beta", "--tools", "2", "--no-special-tools", transport="sse")
    gw = gateway(
        {
            "upstreams": {
                "alpha": {"transport": "streamable_http", "url": alpha_url},
                "beta": {"transport": "sse", "url": beta_url},
                "gamma": scripted_stdio_args("--name", "gamma", "--tools", "2", "--no-special-tools"),
            }
        },
        upstreams_ready=3,
    )
    async with connect(gw.url) as client:
        names = sorted(t.name for t in await all_tools(client))
        assert names == [f"{u}__tool_{i}" for u in ("alpha", "beta", "gamma") for i in range(2)]
        for upstream in ("alpha", "beta", "gamma"):
            result = await client.call_tool(f"{upstream}__tool_1", {"x": upstream})
            assert not result.is_error
            # The upstream saw its own tool name, not the prefixed one.
            assert echo_of(result) == {"server": upstream, "tool": "tool_1", "arguments": {"x": upstream}}


async def test_resources_templates_and_prompts_are_federated_with_reversible_uris(upstreams, gateway):
    _, alpha_url = upstreams(
        "--name", "alpha", "--tools", "0", "--prompts", "1", "--resources", "2", "--templates", "1"
    )
    gw = gateway({"upstreams": {"alpha": {"transport": "streamable_http", "url": alpha_url}}}, upstreams_ready=1)
    async with connect(gw.url) as client:
        resources = (await client.list_resources()).resources
        uris = sorted(str(r.uri) for r in resources)
        assert uris == ["alpha://alpha__item/0", "alpha://alpha__item/1"]
        read = await client.read_resource("alpha://alpha__item/1")
        # The gateway maps the URI back to the exposed form in the result.
        assert str(read.contents[0].uri) == "alpha://alpha__item/1"
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["alpha://alpha__tpl0/{id}"]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["alpha__prompt_0"]
        prompt = await client.get_prompt("alpha__prompt_0", {})
        assert prompt.messages


async def test_unknown_tool_is_a_clear_error_and_the_session_keeps_working(upstreams, gateway):
    _, alpha_url = upstreams("--name", "alpha", "--tools", "1", "--no-special-tools")
    gw = gateway({"upstreams": {"alpha": {"transport": "streamable_http", "url": alpha_url}}}, upstreams_ready=1)
    async with connect(gw.url) as client:
        with pytest.raises(Exception, match="Unknown tool: nope"):
            await client.call_tool("nope", {})
        assert echo_of(await client.call_tool("alpha__tool_0", {}))["tool"] == "tool_0"
