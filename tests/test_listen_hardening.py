"""`subscriptions/listen` under the same policy as reads, bounded, watched together; and a storm of list
changes from an upstream reaches each client a few times, not thousands."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import yaml

from tests.support.processes import read_records
from tests.support.wire import ACCEPT, MODERN, envelope, initialize_body

pytestmark = pytest.mark.anyio


def _listen(url: str, uris: list[str], **flags: bool) -> dict:
    params = {"notifications": {**flags, "resourceSubscriptions": uris}, "_meta": envelope()}
    body = {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen", "params": params}
    headers = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": "subscriptions/listen"}
    with httpx.Client(timeout=30) as client, client.stream("POST", url, json=body, headers=headers) as stream:
        if stream.status_code != 200:
            stream.read()
            return stream.json()
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return json.loads(line[5:])
    raise AssertionError("no acknowledgement")


def test_a_listen_watches_only_what_the_caller_may_read(gateway, upstreams, tmp_path) -> None:
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--resources", "3", "--record", str(record))
    policies = tmp_path / "policies"
    policies.mkdir()
    rule = {"name": "no-1", "effect": "deny", "targets": {"resources": ["up://up__item/1"]}}
    (policies / "p.yaml").write_text(yaml.safe_dump({"tenants": ["*"], "default": "allow", "rules": [rule]}))
    upstream = {"transport": "streamable_http", "url": url, "protocol": "2025-11-25"}
    gw = gateway({"upstreams": {"up": upstream}, "policies": {"dir": str(policies)}}, upstreams_ready=1)
    asked = ["up://up__item/0", "up://up__item/1", "UP://up__item/x/../1", "up://up__item/%31", "up://up__item/2"]
    ack = _listen(gw.url, asked)
    honored = ack["params"]["notifications"]["resourceSubscriptions"]
    assert honored == ["up://up__item/0", "up://up__item/2"]  # the hidden one in any spelling: not watched
    subscribed = {r["uri"] for r in read_records(record) if r.get("method") == "resources/subscribe"}
    assert subscribed == {"up://item/0", "up://item/2"}


def test_a_listen_is_capped_and_its_subscribes_go_out_together(gateway, upstreams, tmp_path) -> None:
    _, url = upstreams("--name", "up", "--resources", "40", "--latency", "0.3")
    upstream = {"transport": "streamable_http", "url": url, "protocol": "2025-11-25"}
    gw = gateway({"upstreams": {"up": upstream}, "server": {"max_listen_uris": 40}}, upstreams_ready=1)
    too_many = _listen(gw.url, [f"up://up__item/{i}" for i in range(41)])
    assert too_many["error"]["code"] == -32602 and "max_listen_uris" in too_many["error"]["message"]
    started = time.monotonic()
    ack = _listen(gw.url, [f"up://up__item/{i}" for i in range(40)])
    took = time.monotonic() - started
    assert len(ack["params"]["notifications"]["resourceSubscriptions"]) == 40
    assert took < 4, took  # one by one, 40 subscribes of 0.3 s each take 12 s


def test_a_storm_of_list_changes_reaches_each_client_a_few_times(gateway, upstreams) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    gw = gateway({"upstreams": {"up": {"transport": "streamable_http", "url": url}}}, upstreams_ready=1)
    with httpx.Client(timeout=30) as client:
        sid = client.post(gw.url, json=initialize_body(), headers=ACCEPT).headers["mcp-session-id"]
        session = {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        received: list[str] = []
        with client.stream("GET", gw.url, headers={**session, "accept": "text/event-stream"}) as stream:
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "up__storm", "arguments": {"count": 2000}},
            }
            assert client.post(gw.url, json=call, headers=session).status_code == 200
            deadline = time.monotonic() + 3
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    received.append(json.loads(line[5:])["method"])
                if time.monotonic() > deadline:
                    break
    changes = received.count("notifications/tools/list_changed")
    assert 1 <= changes <= 60, changes  # 2000 upstream notifications, coalesced towards the client
    assert any("notification storm" in line for line in gw.proc.output)
