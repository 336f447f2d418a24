"""Fault isolation: upstreams that die, hang or crash never take the gateway or the other upstreams down."""

from __future__ import annotations

import time

import anyio
import pytest

from tests.support.client import connect, echo_of
from tests.support.processes import Gateway, free_port, read_records, scripted_stdio_args, start_redis

pytestmark = pytest.mark.anyio


async def test_upstream_killed_mid_call_gives_a_clear_error_and_others_keep_working(upstreams, gateway):
    doomed, doomed_url = upstreams("--name", "doomed", "--tools", "1")
    _, healthy_url = upstreams("--name", "healthy", "--tools", "1", "--no-special-tools")
    gw = gateway(
        {
            "upstreams": {
                "doomed": {"transport": "streamable_http", "url": doomed_url},
                "healthy": {"transport": "streamable_http", "url": healthy_url},
            }
        },
        upstreams_ready=2,
    )
    async with connect(gw.url) as client:
        async with anyio.create_task_group() as tg:
            outcome: dict[str, object] = {}

            async def slow_call() -> None:
                try:
                    outcome["result"] = await client.call_tool("doomed__sleep", {"seconds": 30})
                except Exception as exc:  # the SDK raises McpError for JSON-RPC errors
                    outcome["error"] = str(exc)

            tg.start_soon(slow_call)
            await anyio.sleep(0.5)
            doomed.kill()
        assert "doomed" in str(outcome.get("error")), outcome
        assert echo_of(await client.call_tool("healthy__tool_0", {}))["server"] == "healthy"
        # Its tools leave the catalog while it is down.
        deadline = time.monotonic() + 5
        names: list[str] = []
        while time.monotonic() < deadline:
            names = [t.name for t in (await client.list_tools()).tools]
            if "doomed__tool_0" not in names:
                break
            await anyio.sleep(0.1)
        assert "healthy__tool_0" in names and "doomed__tool_0" not in names
        with pytest.raises(Exception, match="Unknown tool: doomed__tool_0"):
            await client.call_tool("doomed__tool_0", {})
    ready = gw.readyz()
    assert ready["upstreams"]["doomed"]["state"] == "down"
    assert ready["upstreams"]["healthy"]["state"] == "ready"


async def test_hanging_upstream_times_out_naming_it_within_the_configured_timeout(upstreams, gateway, tmp_path):
    record = tmp_path / "slow.jsonl"
    _, url = upstreams("--name", "slow", "--tools", "1", "--record", str(record))
    gw = gateway(
        {"upstreams": {"slow": {"transport": "streamable_http", "url": url, "timeout": 1.5}}}, upstreams_ready=1
    )
    async with connect(gw.url) as client:
        started = time.monotonic()
        with pytest.raises(Exception, match=r"upstream 'slow' did not answer tools/call within 1.5s"):
            await client.call_tool("slow__hang", {})
        assert 1.4 < time.monotonic() - started < 5
        assert echo_of(await client.call_tool("slow__tool_0", {}))["tool"] == "tool_0"
    # The abandoned call was cancelled upstream, not left running.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(r.get("event") == "cancelled" for r in read_records(record)):
        await anyio.sleep(0.1)
    assert any(r.get("event") == "cancelled" and r.get("tool") == "hang" for r in read_records(record))


async def test_crashed_stdio_upstream_is_restarted_and_serves_again(gateway):
    gw = gateway({"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")}}, upstreams_ready=1)
    async with connect(gw.url) as client:
        with pytest.raises(Exception, match="box"):
            await client.call_tool("box__crash", {})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            health = gw.readyz()["upstreams"]["box"]
            if health["state"] == "ready" and health["connects"] >= 2:
                break
            await anyio.sleep(0.1)
        assert health["connects"] >= 2, health
        assert echo_of(await client.call_tool("box__tool_0", {"again": True}))["arguments"] == {"again": True}


async def test_gateway_starts_with_an_upstream_down_and_picks_it_up_later(upstreams, gateway, tmp_path):
    from tests.support.processes import free_port, scripted_server

    port = free_port()
    _, healthy_url = upstreams("--name", "up", "--tools", "1", "--no-special-tools")
    gw = gateway(
        {
            "upstreams": {
                "up": {"transport": "streamable_http", "url": healthy_url},
                "late": {"transport": "streamable_http", "url": f"http://127.0.0.1:{port}/mcp", "connect_timeout": 1},
            }
        },
        upstreams_ready=1,
    )
    assert gw.readyz()["upstreams"]["late"]["state"] == "down"
    async with connect(gw.url) as client:
        assert echo_of(await client.call_tool("up__tool_0", {}))["server"] == "up"
        late, _ = scripted_server("--name", "late", "--tools", "1", "--no-special-tools", "--port", str(port))
        try:
            deadline = time.monotonic() + 30
            names: list[str] = []
            while time.monotonic() < deadline and "late__tool_0" not in names:
                await anyio.sleep(0.2)
                names = [t.name for t in (await client.list_tools()).tools]
            assert "late__tool_0" in names
            assert echo_of(await client.call_tool("late__tool_0", {}))["server"] == "late"
        finally:
            late.kill()


async def test_an_idle_http_upstream_that_dies_leaves_the_catalog_without_any_call(upstreams, gateway):
    idle, url = upstreams("--name", "idle", "--tools", "1", "--no-special-tools")
    gw = gateway(
        {"upstreams": {"idle": {"transport": "streamable_http", "url": url, "health_interval": 0.5}}}, upstreams_ready=1
    )
    idle.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.readyz()["upstreams"]["idle"]["state"] == "ready":
        await anyio.sleep(0.1)
    health = gw.readyz()["upstreams"]["idle"]
    assert health["state"] == "down", health
    assert gw.readyz()["catalog"]["tools"] == 0


async def test_a_redis_outage_degrades_sharing_but_never_stops_serving(upstreams, gateway):
    redis, redis_url = start_redis()
    try:
        _, url = upstreams("--name", "up", "--tools", "1")
        gw = gateway(
            {
                "state": {"backend": "redis", "redis_url": redis_url},
                "upstreams": {"up": {"transport": "streamable_http", "url": url}},
            },
            upstreams_ready=1,
        )
        async with connect(gw.url, "legacy") as legacy:
            assert echo_of(await legacy.call_tool("up__tool_0", {"n": 1}))["arguments"] == {"n": 1}
            redis.kill()
            # The session this process already knows keeps working, and so do new clients of both eras.
            assert echo_of(await legacy.call_tool("up__tool_0", {"n": 2}))["arguments"] == {"n": 2}
            async with connect(gw.url, "legacy") as fresh:
                assert echo_of(await fresh.call_tool("up__tool_0", {"n": 3}))["arguments"] == {"n": 3}
            async with connect(gw.url, "modern") as modern:
                assert echo_of(await modern.call_tool("up__tool_0", {"n": 4}))["arguments"] == {"n": 4}
        assert gw.readyz()["ready"] is True
    finally:
        redis.kill()


def test_an_unreachable_redis_at_start_is_a_clear_error(tmp_path):
    config = {"state": {"backend": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"}, "upstreams": {}}
    gw = Gateway(config, tmp_path)
    try:
        assert gw.proc.popen.wait(20) != 0
        output = "".join(gw.proc.output)
        assert "state backend unavailable: cannot reach Redis at redis://127.0.0.1:" in output
    finally:
        gw.stop()
