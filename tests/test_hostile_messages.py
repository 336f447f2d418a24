"""Hostile JSON-RPC on every front: an id that is an array, an object or a number that would come back
changed, a cancellation naming one, nesting deeper than anything real: each gets a clear JSON-RPC error, the
front keeps serving, and nothing answers 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.processes import scripted_stdio_args
from tests.support.stdio_raw import RawStdio
from tests.support.wire import ACCEPT, MODERN, envelope, initialize_body

BAD_IDS = [[1], {"a": 1}, None, True, 18446744073709551616, 1e300, "x" * 2000]


def _deep(levels: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.fixture
def stdio(tmp_path: Path) -> Iterator[RawStdio]:
    config = tmp_path / "g.yaml"
    config.write_text(yaml.safe_dump({"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")}}))
    gateway = RawStdio(config)
    yield gateway
    gateway.close()


def _init(stdio: RawStdio) -> None:
    answer = stdio.ask(initialize_body())
    assert answer["result"]["protocolVersion"] == "2025-11-25"


def test_stdio_answers_bad_ids_and_keeps_serving(stdio: RawStdio) -> None:
    _init(stdio)
    for bad in BAD_IDS:
        stdio.send({"jsonrpc": "2.0", "id": bad, "method": "tools/list"})
        error = stdio.receive(where=lambda m: "error" in m)
        assert error["id"] is None and error["error"]["code"] == -32600, bad
        stdio.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": bad}})
    stdio.send(b"{not json")
    assert stdio.receive(where=lambda m: "error" in m)["error"]["code"] == -32700
    # 2026-07-28 requests on the same connection, also with a bad id
    stdio.send({"jsonrpc": "2.0", "id": [7], "method": "tools/list", "params": {"_meta": envelope()}})
    assert stdio.receive(where=lambda m: "error" in m)["error"]["code"] == -32600
    deep = initialize_body()
    deep["id"] = 9
    deep["params"]["capabilities"] = _deep(300)
    answer = stdio.ask(deep)
    assert answer["error"]["code"] == -32600 and "nested" in answer["error"]["message"]
    # Still serving, both eras, and ids of 64 bits come back as sent.
    listed = stdio.ask({"jsonrpc": "2.0", "id": 2**64 - 1, "method": "tools/list"})
    assert listed["id"] == 2**64 - 1 and listed["result"]["tools"]
    modern = stdio.ask({"jsonrpc": "2.0", "id": -(2**63), "method": "tools/list", "params": {"_meta": envelope()}})
    assert modern["id"] == -(2**63) and modern["result"]["resultType"] == "complete"
    assert stdio.alive


def test_http_answers_bad_ids_and_deep_nesting_with_400_not_500(gateway, upstreams) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    gw = gateway({"upstreams": {"up": {"transport": "streamable_http", "url": url}}}, upstreams_ready=1)
    with httpx.Client(timeout=10) as client:
        sid = client.post(gw.url, json=initialize_body(), headers=ACCEPT).headers["mcp-session-id"]
        legacy = {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        modern = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": "tools/list"}
        for bad in BAD_IDS:
            for headers, params in ((legacy, {}), (modern, {"_meta": envelope()})):
                body = json.dumps({"jsonrpc": "2.0", "id": bad, "method": "tools/list", "params": params})
                answer = client.post(gw.url, content=body, headers=headers)
                assert answer.status_code == 400 and answer.json()["error"]["code"] == -32600, (bad, answer.text)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": bad}}
            assert client.post(gw.url, content=json.dumps(cancel), headers=legacy).status_code == 202
        deep = initialize_body()
        deep["params"]["capabilities"] = _deep(300)
        answer = client.post(gw.url, content=json.dumps(deep), headers=ACCEPT)
        assert answer.status_code == 400 and "nested" in answer.json()["error"]["message"]
        big = b'{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}'
        assert client.post(gw.url, content=big, headers=legacy).json()["id"] == 2**64 - 1
    assert "Traceback" not in "".join(gw.proc.output)
