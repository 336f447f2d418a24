"""A legacy HTTP+SSE upstream's `endpoint` event may only name its own origin (scheme, host and port of the
SSE URL), as the MCP SDK client requires: anything else fails the connection with an error naming the
upstream, and nothing, least of all the upstream's credentials, is ever sent to the other origin."""

from __future__ import annotations

import time

import pytest

from tests.support.client import connect
from tests.support.raw_upstream import RawHttpUpstream, RawSseUpstream

pytestmark = pytest.mark.anyio

SECRET = "Bearer upstream-secret-123"


@pytest.mark.parametrize("shape", ["other-port", "other-host", "other-scheme", "scheme-relative"])
async def test_an_endpoint_on_another_origin_fails_the_connection_and_nothing_is_posted(gateway, shape):
    with RawHttpUpstream({}) as elsewhere:
        endpoints = {
            "other-port": f"http://127.0.0.1:{elsewhere.port}/messages?session_id=1",
            "other-host": f"http://localhost:{elsewhere.port}/messages",
            "other-scheme": "https://127.0.0.1:{port}/messages",
            "scheme-relative": f"//localhost:{elsewhere.port}/messages",
        }
        with RawSseUpstream({}, endpoint=endpoints[shape]) as raw:
            raw.endpoint = (raw.endpoint or "").replace("{port}", str(raw.port))
            upstream = {"transport": "sse", "url": raw.url, "headers": {"Authorization": SECRET}, "connect_timeout": 2}
            gw = gateway({"upstreams": {"legacy": upstream}})
            deadline = time.monotonic() + 10
            health = gw.readyz()["upstreams"]["legacy"]
            while time.monotonic() < deadline and (health["state"] != "down" or len(raw.requests) < 2):
                time.sleep(0.1)  # at least one reconnect: still refused
                health = gw.readyz()["upstreams"]["legacy"]
        assert [headers.get("authorization") for _, _, headers in elsewhere.requests] == []  # nothing went there
        assert health["state"] == "down", health
        assert "upstream 'legacy' is unavailable: its endpoint event names another origin" in health["error"]
        assert f"only endpoints on http://127.0.0.1:{raw.port} are accepted" in health["error"]
        assert "session_id" not in health["error"]  # the origin is shown, never the path or query
        assert all(method == "GET" for method, _, _ in raw.requests)  # nor any POST to the upstream itself


async def test_a_same_origin_endpoint_is_used(gateway):
    with RawSseUpstream({}) as raw:
        # Absolute, on the SSE URL's own origin (host spelled in another case, default path resolution).
        raw.endpoint = f"HTTP://127.0.0.1:{raw.port}/messages?session_id=1"
        gw = gateway({"upstreams": {"legacy": {"transport": "sse", "url": raw.url}}}, upstreams_ready=1)
        async with connect(gw.url, "legacy") as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["legacy__echo"]
        assert any(method == "POST" for method, _, _ in raw.requests)
