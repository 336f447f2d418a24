"""The npm reference server `@modelcontextprotocol/server-everything` as an upstream, over HTTP and stdio.

tests/run.sh installs it into ~/.cache/mcp-gateway/npm. It binds every interface by default; the
loopback_only.cjs preload keeps it on 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.client import connect, text_of
from tests.support.processes import SUPPORT, Proc, free_port

pytestmark = pytest.mark.anyio

CACHE = Path(os.environ.get("MCP_GW_CACHE", Path.home() / ".cache" / "mcp-gateway"))
EVERYTHING = CACHE / "npm" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


@pytest.fixture
def everything_js() -> Path:
    if not EVERYTHING.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{EVERYTHING} is missing: tests/run.sh installs it")
        pytest.skip("npm server-everything not installed (run tests/run.sh)")
    return EVERYTHING


async def test_npm_everything_server_over_streamable_http_and_stdio(everything_js, gateway):
    port = free_port()
    http_server = Proc(
        ["node", "--require", str(SUPPORT / "loopback_only.cjs"), str(everything_js), "streamableHttp"],
        env={"PORT": str(port)},
    )
    try:
        http_server.wait_for_line("MCP Streamable HTTP Server listening")
        gw = gateway(
            {
                "upstreams": {
                    "web": {"transport": "streamable_http", "url": f"http://127.0.0.1:{port}/mcp"},
                    "local": {"transport": "stdio", "command": "node", "args": [str(everything_js), "stdio"]},
                }
            },
            upstreams_ready=2,
        )
        async with connect(gw.url) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"web__echo", "local__echo", "web__get-sum", "local__get-sum"} <= names
            for prefix in ("web", "local"):
                assert text_of(await client.call_tool(f"{prefix}__echo", {"message": "hi"})) == "Echo: hi"
                assert "5" in text_of(await client.call_tool(f"{prefix}__get-sum", {"a": 2, "b": 3}))
            resources = (await client.list_resources()).resources
            assert any(str(r.uri).startswith("demo://web__") for r in resources), [str(r.uri) for r in resources][:5]
            first = next(r for r in resources if str(r.uri).startswith("demo://web__"))
            read = await client.read_resource(str(first.uri))
            assert str(read.contents[0].uri) == str(first.uri)
    finally:
        http_server.kill()
