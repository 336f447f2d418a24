"""Callers sharing an upstream cannot hold each other up: a client that never reads its response stream
does not stall a shared stdio or legacy SSE upstream, and one tenant's backlog does not queue another
tenant's calls."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.support.processes import SUPPORT, read_records
from tests.support.raw_upstream import RawSseUpstream, text_result
from tests.support.wire import envelope, final_message, modern_headers, modern_post

pytestmark = pytest.mark.anyio


def _stuck_client(port: int, tool: str, arguments: dict) -> socket.socket:
    """A raw client that POSTs one 2026-07-28 tools/call asking for progress, then never reads a byte."""
    params = {"name": tool, "arguments": arguments, "_meta": envelope(progressToken="stuck")}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    headers = {**modern_headers("tools/call", params), "host": f"127.0.0.1:{port}", "content-length": str(len(body))}
    request = "POST /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.connect(("127.0.0.1", port))
    sock.sendall(request.encode() + body)
    return sock


def _echo_seconds(url: str, n: int) -> float:
    """How long a quick call from another client takes (a 2026-07-28 POST; at most 5 s)."""
    started = time.monotonic()
    try:
        response = modern_post(url, "tools/call", {"name": "box__echo", "arguments": {"n": n}}, timeout=5)
    except httpx.TimeoutException:
        pytest.fail(f"call {n} of another client got no answer within 5 s: the upstream is stalled")
    echoed = json.loads(final_message(response)["result"]["content"][0]["text"])
    assert echoed.get("arguments", echoed) == {"n": n}
    return time.monotonic() - started


FLOOD = {"count": 40000, "size": 400}  # ~16 MB of progress: far more than the socket buffers on the way hold


def _flood_events(request_id: Any, params: dict[str, Any]) -> bytes:
    """What the raw stdio server's `flood` tool sends, as events on a legacy SSE stream."""
    token = params["_meta"]["progressToken"]
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token}}
    events = []
    for step in range(FLOOD["count"]):
        progress["params"].update(progress=step, message="p" * FLOOD["size"])
        events.append(b"event: message\ndata: %s\n\n" % json.dumps(progress).encode())
    answer = text_result(request_id, json.dumps({"sent": FLOOD["count"]}))
    return b"".join(events) + b"event: message\ndata: %s\n\n" % json.dumps(answer).encode()


@contextlib.contextmanager
def _shared_upstream(transport: str) -> Iterator[dict[str, Any]]:
    if transport == "stdio":
        args = [str(SUPPORT / "raw_stdio_server.py")]
        yield {"transport": "stdio", "command": sys.executable, "args": args, "protocol": "2025-11-25"}
        return
    with RawSseUpstream({"flood": _flood_events}) as raw:
        yield {"transport": "sse", "url": raw.url}


@pytest.mark.parametrize("transport", ["stdio", "sse"])
async def test_a_client_not_reading_its_stream_does_not_stall_a_shared_upstream(gateway, transport):
    with _shared_upstream(transport) as upstream:
        gw = gateway({"upstreams": {"box": upstream}}, upstreams_ready=1)
        await _stuck_client_does_not_stall(gw)


async def _stuck_client_does_not_stall(gw: Any) -> None:
    stuck = _stuck_client(gw.port, "box__flood", FLOOD)
    try:
        await anyio.sleep(1.5)  # the flood is under way and the stuck client's stream is full
        seconds = [_echo_seconds(gw.url, n) for n in range(5)]
        print(f"another client's calls while one client is stuck: {', '.join(f'{s * 1000:.0f}' for s in seconds)} ms")
        assert max(seconds) < 2.0, seconds
    finally:
        stuck.close()
    # Once the stuck client is gone, its call ends and says once how much it missed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("notifications were dropped" in line for line in gw.proc.output):
        await anyio.sleep(0.1)
    dropped = [line for line in gw.proc.output if "notifications were dropped" in line]
    assert len(dropped) == 1 and "upstream box: a client did not read its response stream" in dropped[0], dropped
    assert gw.readyz()["upstreams"]["box"]["connects"] == 1


KEYS = {"a": "mgw_tenant_a_key", "b": "mgw_tenant_b_key"}


def _api_keys() -> list[dict]:
    return [
        {"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": tenant, "subject": f"{tenant}-bot"}
        for tenant, key in KEYS.items()
    ]


async def _call(client: httpx.AsyncClient, url: str, tenant: str, tool: str, arguments: dict) -> dict:
    params = {"name": tool, "arguments": arguments, "_meta": envelope()}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    headers = {**modern_headers("tools/call", params), "x-api-key": KEYS[tenant]}
    return final_message(await client.post(url, content=json.dumps(body), headers=headers))


def _sleeps(record) -> int:
    return sum(1 for r in read_records(record) if r.get("method") == "tools/call" and r.get("name") == "sleep")


async def test_one_tenants_backlog_does_not_queue_another_tenants_quick_call(upstreams, gateway, tmp_path):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record))
    gw = gateway(
        {"auth": {"api_keys": _api_keys()}, "upstreams": {"up": {"transport": "streamable_http", "url": url}}},
        upstreams_ready=1,
    )
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client, anyio.create_task_group() as tg:
        # Tenant a: 300 slow calls, more than the upstream pool's 256 connections.
        for _ in range(300):
            tg.start_soon(_call, client, gw.url, "a", "up__sleep", {"seconds": 6})
        # Every regular slot is held: 255 by tenant a, one by the gateway's own listen stream.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _sleeps(record) < 255:
            await anyio.sleep(0.1)
        assert _sleeps(record) == 255
        await anyio.sleep(0.5)  # the rest of a's calls wait for a slot
        assert _sleeps(record) == 255
        # Tenant b: one quick call, served at once rather than after a's backlog.
        started = time.monotonic()
        answer = await _call(client, gw.url, "b", "up__tool_0", {"quick": True})
        waited = time.monotonic() - started
        assert json.loads(answer["result"]["content"][0]["text"])["arguments"] == {"quick": True}
        print(f"tenant b's quick call behind 300 slow calls of tenant a: {waited * 1000:.0f} ms")
        assert waited < 1.5, f"tenant b waited {waited:.1f} s behind tenant a"
