"""Malformed messages from an upstream (ids that are arrays, objects or booleans, params that are not an
object, tokens that cannot be keys, lines that are not JSON) are dropped with one throttled warning: the
upstream's reader keeps going, the call in flight gets its answer, nothing is restarted."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

from tests.support.client import connect, text_of
from tests.support.processes import SUPPORT
from tests.support.raw_upstream import Answer, RawHttpUpstream, RawSseUpstream, text_result

pytestmark = pytest.mark.anyio


def _bad_messages(request_id: Any) -> list[dict[str, Any]]:
    """What the raw stdio server's `bad_ids` tool writes too (see tests/support/raw_stdio_server.py)."""
    messages: list[dict[str, Any]] = []
    for bad in ([request_id], {"id": request_id}, True):
        messages.append({"jsonrpc": "2.0", "id": bad, "result": {}})
        messages.append({"jsonrpc": "2.0", "id": bad, "method": "roots/list"})
    messages.append({"jsonrpc": "2.0", "method": "notifications/message", "params": ["not", "an", "object"]})
    messages.append({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": [1]}})
    messages.append({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": [1]}})
    return messages


def _events(request_id: Any, params: dict[str, Any] | None = None) -> bytes:
    lines = [json.dumps(m) for m in _bad_messages(request_id)] + ["not JSON", "[1, 2, 3]"]
    lines.append(json.dumps(text_result(request_id, '{"arguments": "after the bad ones"}')))
    return b"".join(b"event: message\ndata: %s\n\n" % line.encode() for line in lines)


def _sse_answer(request_id: Any) -> Answer:
    body = _events(request_id)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body)
    return Answer(head + body)


def _warned_once(gw: Any, text: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(text in line for line in gw.proc.output):
        time.sleep(0.05)
    assert sum(text in line for line in gw.proc.output) == 1, "".join(gw.proc.output)[-3000:]


async def _call_survives(gw: Any, upstream: str) -> None:
    async with connect(gw.url, "legacy") as client:
        for attempt in range(3):
            answer = text_of(await client.call_tool(f"{upstream}__bad_ids", {"attempt": attempt}))
            assert "after the bad ones" in answer or json.loads(answer)["arguments"] == {"attempt": attempt}
    health = gw.readyz()["upstreams"][upstream]
    assert health["state"] == "ready" and health["connects"] == 1, health  # never restarted or reconnected


async def test_a_stdio_upstream_writing_array_ids_keeps_its_reader(gateway):
    server = {"transport": "stdio", "command": sys.executable, "args": [str(SUPPORT / "raw_stdio_server.py")]}
    gw = gateway({"upstreams": {"box": {**server, "protocol": "2025-11-25"}}}, upstreams_ready=1)
    await _call_survives(gw, "box")
    _warned_once(gw, "upstream box sent a message whose id is a list, not a string or number; dropped")


async def test_a_legacy_sse_upstream_writing_array_ids_keeps_its_stream(gateway):
    with RawSseUpstream({"bad_ids": _events}) as raw:
        gw = gateway({"upstreams": {"legacy": {"transport": "sse", "url": raw.url}}}, upstreams_ready=1)
        await _call_survives(gw, "legacy")
        _warned_once(gw, "upstream legacy sent a message whose id is a list, not a string or number; dropped")


async def test_array_ids_on_a_calls_own_http_stream_do_not_fail_the_call(gateway):
    with RawHttpUpstream({"bad_ids": _sse_answer}) as raw:
        upstream = {"transport": "streamable_http", "url": raw.url, "protocol": "2025-11-25"}
        gw = gateway({"upstreams": {"web": upstream}}, upstreams_ready=1)
        await _call_survives(gw, "web")
        _warned_once(gw, "upstream web sent a malformed roots/list; dropped")
