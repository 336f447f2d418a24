"""What a caller may hold is bounded, and what it holds counts: GET streams per session, sessions per caller,
calls parked waiting for a client's input (each holding its concurrency slot), and the policy deciding before
OAuth scopes, so a hidden tool never reveals the scope it needs."""

from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack

import httpx
import pytest
import yaml

from tests.support.wire import ACCEPT, initialize_body, modern_post

pytestmark = pytest.mark.anyio


def _initialize(client: httpx.Client, url: str) -> tuple[httpx.Response, dict[str, str]]:
    opened = client.post(url, json=initialize_body(), headers=ACCEPT)
    sid = opened.headers.get("mcp-session-id", "")
    return opened, {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}


def test_get_streams_per_session_and_sessions_per_caller_are_capped(gateway, upstreams) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    server = {"max_streams_per_session": 2, "max_sessions_per_caller": 3}
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url}}, "server": server}, upstreams_ready=1
    )
    with httpx.Client(timeout=10) as client, ExitStack() as streams:
        _, first = _initialize(client, gw.url)
        get = {**first, "accept": "text/event-stream"}
        for _ in range(2):
            assert streams.enter_context(client.stream("GET", gw.url, headers=get)).status_code == 200
        third = client.get(gw.url, headers=get)
        assert third.status_code == 429 and "2 open GET stream" in third.json()["error"]["message"]
        # Sessions: a fourth one ends the least recently used idle one (clients rarely DELETE).
        _, second = _initialize(client, gw.url)
        _, third_session = _initialize(client, gw.url)
        _, fourth = _initialize(client, gw.url)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert client.post(gw.url, json=ping, headers=second).status_code == 404  # the idle one it replaced
        assert client.post(gw.url, json=ping, headers=first).status_code == 200  # busy: its streams are open
        for session in (third_session, fourth):
            assert client.post(gw.url, json=ping, headers=session).status_code == 200
        for session in (third_session, fourth):
            streams.enter_context(client.stream("GET", gw.url, headers={**session, "accept": "text/event-stream"}))
        refused, _ = _initialize(client, gw.url)  # every session of this caller is busy now
        assert refused.status_code == 429 and "max_sessions_per_caller" in refused.json()["error"]["message"]


def _sampling_call(gw_url: str, name: str = "up__sample", **extra: object) -> dict:
    params = {"name": name, "arguments": {"prompt": "hi"}, **extra}
    answer = modern_post(gw_url, "tools/call", params, capabilities={"sampling": {}, "elicitation": {}})
    lines = [line[5:] for line in answer.text.splitlines() if line.startswith("data:")]
    return json.loads(lines[-1]) if lines else answer.json()


def test_a_parked_call_holds_its_concurrency_slot_and_parked_calls_are_capped(gateway, upstreams, tmp_path) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    policies = tmp_path / "policies"
    policies.mkdir()
    limits = [{"name": "one-at-a-time", "per": "tenant", "concurrency": 1, "targets": {"tools": ["up__sample"]}}]
    (policies / "p.yaml").write_text(yaml.safe_dump({"tenants": ["*"], "default": "allow", "limits": limits}))
    config = {
        "upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": "2025-11-25"}},
        "policies": {"dir": str(policies)},
        "server": {"max_parked_calls": 1},
    }
    gw = gateway(config, upstreams_ready=1)
    parked = _sampling_call(gw.url)["result"]
    assert parked["resultType"] == "input_required"
    refused = _sampling_call(gw.url)  # the parked call is still in flight: it holds the one slot
    assert refused["error"]["code"] == -32005 and "one-at-a-time" in refused["error"]["message"]
    [key] = parked["inputRequests"]
    answer = {"role": "assistant", "content": {"type": "text", "text": "yes"}, "model": "m", "stopReason": "endTurn"}
    done = _sampling_call(gw.url, inputResponses={key: answer}, requestState=parked["requestState"])
    assert done["result"]["resultType"] == "complete"
    assert _sampling_call(gw.url)["result"]["resultType"] == "input_required"  # the slot came back
    # The cap on parked calls: another tool, not limited, that would park too.
    over = _sampling_call(gw.url, name="up__elicit")
    assert over["error"]["code"] == -32005 and "max_parked_calls" in over["error"]["data"]["limit"]


def test_a_hidden_tool_is_unknown_even_when_it_needs_scopes(gateway, upstreams, tmp_path) -> None:
    _, url = upstreams("--name", "up", "--tools", "2")
    policies = tmp_path / "policies"
    policies.mkdir()
    rule = {"name": "hide-1", "effect": "deny", "targets": {"tools": ["up__tool_1"]}}
    (policies / "p.yaml").write_text(yaml.safe_dump({"tenants": ["*"], "default": "allow", "rules": [rule]}))
    key = "mgw_scopes_key"
    config = {
        "auth": {"api_keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": "t", "subject": "s"}]},
        "upstreams": {"up": {"transport": "streamable_http", "url": url, "tool_scopes": {"tool_*": ["repo:write"]}}},
        "policies": {"dir": str(policies)},
    }
    gw = gateway(config, upstreams_ready=1)
    hidden = modern_post(gw.url, "tools/call", {"name": "up__tool_1"}, headers={"x-api-key": key})
    assert hidden.status_code == 400 and hidden.json()["error"]["message"] == "Unknown tool: up__tool_1"
    assert "repo:write" not in hidden.text and "www-authenticate" not in hidden.headers
    visible = modern_post(gw.url, "tools/call", {"name": "up__tool_0"}, headers={"x-api-key": key})
    assert visible.status_code == 403 and 'scope="repo:write' in visible.headers["www-authenticate"]
