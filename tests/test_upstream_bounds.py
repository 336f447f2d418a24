"""Messages from upstreams are bounded by `max_message_bytes` on every path they come in: HTTP bodies
(length-framed, chunked, read until close, gzip-inflated), SSE events (a POST's stream, the legacy event
stream) and stdio lines. The call that hit the limit fails with an error naming the upstream and the limit;
the upstream stays connected, other calls keep working, and the gateway's memory stays bounded."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.client import connect, text_of
from tests.support.processes import SUPPORT
from tests.support.raw_upstream import Answer, RawHttpUpstream, RawSseUpstream, text_result

pytestmark = pytest.mark.anyio

LIMIT = 1 << 20
BIG = 2 * LIMIT  # what the oversized answers hold (decoded)
BOMB = 200 * 1000 * 1000  # what the gzip bombs inflate to: 200 MB, ~0.2 MB on the wire


def _error(upstream: str) -> str:
    return f"upstream '{upstream}' sent a message larger than 1 MiB \\(max_message_bytes\\)"


def _big_message(request_id: Any) -> bytes:
    return json.dumps(text_result(request_id, "x" * BIG)).encode()


def _gzip_bomb(prefix: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = b"0" * 1_000_000
    return (
        packer.compress(prefix) + b"".join(packer.compress(zeros) for _ in range(BOMB // len(zeros))) + packer.flush()
    )


def _chunked(body: bytes, size: int = 65536) -> bytes:
    pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(pieces) + b"0\r\n\r\n"


def _length_framed(request_id: Any) -> Answer:
    body = _big_message(request_id)
    return Answer(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)


def _chunked_json(request_id: Any) -> Answer:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    return Answer(head + _chunked(_big_message(request_id)))


def _until_close(request_id: Any) -> Answer:
    return Answer(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + _big_message(request_id), close=True)


def _sse_event(request_id: Any) -> Answer:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return Answer(head + _chunked(b"event: message\ndata: " + _big_message(request_id) + b"\n\n"))


def _bomb_json(request_id: Any) -> Answer:
    body = _gzip_bomb(b'{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"' % request_id)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
    return Answer(head + b"content-length: %d\r\n\r\n" % len(body) + body)


def _bomb_sse(request_id: Any) -> Answer:
    body = _gzip_bomb(b'event: message\ndata: {"jsonrpc":"2.0","id":%d,"result":{"text":"' % request_id)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
    return Answer(head + b"transfer-encoding: chunked\r\n\r\n" + _chunked(body))


def _peak_rss(pid: int) -> int:
    """The process's resident memory high-water mark (VmHWM): what it took at its worst, not what it kept."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


async def _assert_healthy(client: Any, tool: str) -> None:
    assert json.loads(text_of(await client.call_tool(tool, {"n": 1}))) == {"n": 1}


async def test_oversized_and_gzip_bomb_http_answers_fail_only_their_call(gateway):
    tools = {
        "length_framed": _length_framed,
        "chunked": _chunked_json,
        "until_close": _until_close,
        "sse_event": _sse_event,
        "bomb_json": _bomb_json,
        "bomb_sse": _bomb_sse,
    }
    with RawHttpUpstream(tools) as raw:
        upstream = {"transport": "streamable_http", "url": raw.url, "protocol": "2025-11-25"}
        gw = gateway({"upstreams": {"raw": {**upstream, "max_message_bytes": LIMIT}}}, upstreams_ready=1)
        async with connect(gw.url, "legacy") as client:
            await _assert_healthy(client, "raw__echo")
            before, connections = _peak_rss(gw.proc.pid), raw.connections
            for tool in tools:
                with pytest.raises(Exception, match=_error("raw")):
                    await client.call_tool(f"raw__{tool}", {})
                await _assert_healthy(client, "raw__echo")
            grown = _peak_rss(gw.proc.pid) - before
            # The connection that carried an oversized answer is closed, never reused: each echo after one
            # needed a new connection.
            assert raw.connections - connections >= len(tools)
        # Two 200 MB bombs cost nothing like 200 MB (before the limit, each one cost ~585 MB).
        assert grown < 48 * LIMIT, f"peak RSS grew by {grown / LIMIT:.0f} MiB"
        health = gw.readyz()["upstreams"]["raw"]
        assert health["state"] == "ready" and health["connects"] == 1, health  # never reconnected
    print(
        f"gateway peak RSS growth over {len(tools)} oversized answers (two 200 MB gzip bombs): {grown / LIMIT:.1f} MiB"
    )


async def test_an_oversized_stdio_line_fails_its_call_and_the_process_keeps_serving(gateway):
    server = {"transport": "stdio", "command": sys.executable, "args": [str(SUPPORT / "raw_stdio_server.py")]}
    config = {"upstreams": {"box": {**server, "protocol": "2025-11-25", "max_message_bytes": LIMIT}}}
    gw = gateway(config, upstreams_ready=1)
    async with connect(gw.url, "legacy") as client:
        for arguments in ({"bytes": BIG}, {"bytes": BIG, "tail_id": True}, {"bytes": 40 * LIMIT}):
            with pytest.raises(Exception, match=_error("box")):
                await client.call_tool("box__big", arguments)
            assert json.loads(text_of(await client.call_tool("box__echo", {"n": 1})))["arguments"] == {"n": 1}
        # Just under the limit still arrives whole.
        assert len(text_of(await client.call_tool("box__big", {"bytes": LIMIT - 200}))) == LIMIT - 200
    health = gw.readyz()["upstreams"]["box"]
    assert health["state"] == "ready" and health["connects"] == 1, health  # the process was not restarted


async def test_an_oversized_legacy_sse_event_fails_its_call_and_the_stream_stays(gateway):
    def event(request_id: Any, params: dict[str, Any], tail_id: bool = False) -> bytes:
        message = text_result(request_id, "x" * BIG)
        if tail_id:  # the TypeScript SDK's order: result, jsonrpc, id
            message = {"result": message["result"], "jsonrpc": "2.0", "id": request_id}
        return b"event: message\ndata: " + json.dumps(message).encode() + b"\n\n"

    events = {"big": event, "big_tail_id": lambda request_id, params: event(request_id, params, tail_id=True)}
    with RawSseUpstream(events) as raw:
        upstream = {"transport": "sse", "url": raw.url, "max_message_bytes": LIMIT}
        gw = gateway({"upstreams": {"legacy": upstream}}, upstreams_ready=1)
        async with connect(gw.url, "legacy") as client:
            for tool in events:
                with pytest.raises(Exception, match=_error("legacy")):
                    await client.call_tool(f"legacy__{tool}", {})
                await _assert_healthy(client, "legacy__echo")
        health = gw.readyz()["upstreams"]["legacy"]
        assert health["state"] == "ready" and health["connects"] == 1, health


async def test_a_gzip_bomb_on_the_get_stream_is_dropped_and_the_stream_goes_on(gateway):
    go = threading.Event()

    async def stream() -> AsyncIterator[bytes]:
        yield b": open\n\n"
        while not go.is_set():
            await asyncio.sleep(0.05)
        yield b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"'
        zeros = b"0" * 1_000_000
        for _ in range(BOMB // len(zeros)):
            yield zeros  # gzip-encoded and flushed piece by piece: ~1 KB each on the wire
        yield b'"}}\n\n'
        yield b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n'

    with RawHttpUpstream({}, get_stream=stream, gzip_get=True) as raw:
        upstream = {"transport": "streamable_http", "url": raw.url, "protocol": "2025-11-25"}
        gw = gateway({"upstreams": {"raw": {**upstream, "max_message_bytes": LIMIT}}}, upstreams_ready=1)
        before = _peak_rss(gw.proc.pid)
        go.set()
        warning = "upstream 'raw' sent a message larger than 1 MiB (max_message_bytes); dropped from the GET stream"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _lists(raw) >= 2:  # the list change after the bomb arrived
            await asyncio.sleep(0.2)
        assert _lists(raw) >= 2, [line[:200] for line in gw.proc.output[-10:]]
        grown = _peak_rss(gw.proc.pid) - before
        print(f"gateway peak RSS growth over a 200 MB gzip bomb on the GET stream: {grown / LIMIT:.1f} MiB")
        assert grown < 48 * LIMIT, f"peak RSS grew by {grown / LIMIT:.0f} MiB"
        warned = sum(warning in line for line in gw.proc.output)
        assert warned == 1, [line[:200] for line in gw.proc.output[-10:]]
        assert gw.readyz()["upstreams"]["raw"]["connects"] == 1


def _lists(raw: RawHttpUpstream) -> int:
    return raw.methods.count("tools/list")
