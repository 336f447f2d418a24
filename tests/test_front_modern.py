"""The 2026-07-28 front door at the wire level: discover, the header ladder, bad input, MRTR state.

Every bad request must get the spec's code and HTTP status, and must not reach an upstream: the
upstream records every message it receives, and the test checks no `tools/call` got through.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.support.processes import read_records
from tests.support.wire import ACCEPT, envelope, final_message, initialize_body, modern_post

LEGACY = "2025-11-25"


@pytest.fixture
def recorded(upstreams, gateway, tmp_path):
    """A gateway in front of one handshake-era upstream that records every message it receives."""
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record))
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": LEGACY}}}, upstreams_ready=1
    )
    return gw, record


def _tool_calls(record) -> list[dict]:
    return [r for r in read_records(record) if r.get("method") == "tools/call"]


def test_discover_names_both_eras_and_identifies_the_gateway(recorded):
    gw, _ = recorded
    response = modern_post(gw.url, "server/discover")
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"] == ["2026-07-28", LEGACY]
    assert set(result["capabilities"]) >= {"tools", "prompts", "resources"}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp-gateway"
    assert isinstance(result["ttlMs"], int) and result["cacheScope"] in ("public", "private")
    listed = modern_post(gw.url, "tools/list").json()["result"]
    assert listed["resultType"] == "complete" and "ttlMs" in listed and "cacheScope" in listed
    assert "up__tool_0" in [t["name"] for t in listed["tools"]]


BAD_REQUESTS = [
    # (case, method, params, headers override, meta override, expected status, expected code)
    ("no _meta", "tools/call", {"name": "up__tool_0"}, {}, {}, 400, -32602),
    (
        "no client capabilities",
        "tools/call",
        {"name": "up__tool_0"},
        {},
        {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        400,
        -32602,
    ),
    (
        "header version differs from body",
        "tools/call",
        {"name": "up__tool_0"},
        {"mcp-protocol-version": "2099-01-01"},
        None,
        400,
        -32020,
    ),
    ("Mcp-Method differs", "tools/call", {"name": "up__tool_0"}, {"mcp-method": "tools/list"}, None, 400, -32020),
    ("Mcp-Method missing", "tools/call", {"name": "up__tool_0"}, {"mcp-method": None}, None, 400, -32020),
    ("Mcp-Name differs", "tools/call", {"name": "up__tool_0"}, {"mcp-name": "up__other"}, None, 400, -32020),
    ("Mcp-Name missing", "tools/call", {"name": "up__tool_0"}, {"mcp-name": None}, None, 400, -32020),
    ("removed method initialize", "initialize", {}, {}, None, 404, -32601),
    ("removed method ping", "ping", {}, {}, None, 404, -32601),
    ("removed method logging/setLevel", "logging/setLevel", {"level": "info"}, {}, None, 404, -32601),
    ("unknown method", "tools/frobnicate", {}, {}, None, 404, -32601),
    ("unknown tool", "tools/call", {"name": "up__nope"}, {}, None, 400, -32602),
]


@pytest.mark.parametrize(
    ("method", "params", "headers", "meta", "status", "code"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_modern_requests_get_the_spec_error_and_reach_no_upstream(
    recorded, method, params, headers, meta, status, code
):
    gw, record = recorded
    if meta == {}:
        # No `_meta` at all: the header alone names 2026-07-28.
        body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        sent = {
            **ACCEPT,
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": method,
            "mcp-name": params.get("name", ""),
        }
        response = httpx.post(gw.url, content=json.dumps(body), headers=sent)
    else:
        response = modern_post(gw.url, method, params, headers=headers, meta=meta, request_id=7)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert response.json()["id"] == 7
    assert _tool_calls(record) == []


def test_an_unknown_version_names_the_versions_served(recorded):
    gw, _ = recorded
    meta = {**envelope(), "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    response = modern_post(gw.url, "tools/list", meta=meta, headers={"mcp-protocol-version": "2099-01-01"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert error["data"] == {"supported": ["2026-07-28", LEGACY], "requested": "2099-01-01"}


def test_get_and_delete_are_not_part_of_2026_and_listen_needs_sse(recorded):
    gw, _ = recorded
    for verb in ("GET", "DELETE"):
        response = httpx.request(verb, gw.url, headers={**ACCEPT, "mcp-protocol-version": "2026-07-28"})
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
    listen = modern_post(
        gw.url,
        "subscriptions/listen",
        {"notifications": {"toolsListChanged": True}},
        headers={"accept": "application/json"},
    )
    assert listen.status_code == 406


def test_a_handshake_era_session_token_that_was_tampered_with_is_unknown(recorded):
    gw, record = recorded
    init = initialize_body()
    sid = httpx.post(gw.url, json=init, headers=ACCEPT).headers["mcp-session-id"]
    tampered = sid[:-3] + ("AAA" if not sid.endswith("AAA") else "BBB")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "up__tool_0", "arguments": {}}}
    for token in (tampered, "not-a-session", sid + "x"):
        response = httpx.post(gw.url, json=call, headers={**ACCEPT, "mcp-session-id": token})
        assert response.status_code == 404, token
    assert _tool_calls(record) == []
    assert httpx.post(gw.url, json=call, headers={**ACCEPT, "mcp-session-id": sid}).status_code == 200


def test_legacy_upstream_pushes_become_input_required_and_tampered_state_is_refused(recorded):
    gw, record = recorded
    capabilities = {"elicitation": {}}
    first = modern_post(
        gw.url, "tools/call", {"name": "up__elicit", "arguments": {"message": "who?"}}, capabilities=capabilities
    )
    assert first.status_code == 200
    result = final_message(first)["result"]
    assert result["resultType"] == "input_required"
    [(key, asked)] = result["inputRequests"].items()
    assert asked["method"] == "elicitation/create" and asked["params"]["message"] == "who?"
    state = result["requestState"]

    def retry(arguments: dict, request_state: str) -> httpx.Response:
        params = {
            "name": "up__elicit",
            "arguments": arguments,
            "inputResponses": {key: {"action": "accept", "content": {"name": "octocat"}}},
            "requestState": request_state,
        }
        return modern_post(gw.url, "tools/call", params, capabilities=capabilities, request_id=2)

    tampered = retry({"message": "who?"}, state + "-TAMPERED")
    assert tampered.status_code == 400 and tampered.json()["error"]["code"] == -32602
    other_request = retry({"message": "someone else?"}, state)
    assert other_request.status_code == 400 and "different request" in other_request.json()["error"]["message"]

    # The parked call survived both refusals; the genuine retry completes it.
    done = final_message(retry({"message": "who?"}, state))["result"]
    assert done["resultType"] == "complete"
    assert json.loads(done["content"][0]["text"]) == {"action": "accept", "content": {"name": "octocat"}}
    assert len([r for r in _tool_calls(record) if r.get("name") == "elicit"]) == 1  # one upstream call, resumed

    # The round is over: its state cannot be replayed.
    replay = retry({"message": "who?"}, state)
    assert replay.status_code == 400 and replay.json()["error"]["code"] == -32602


def test_a_client_that_did_not_declare_the_capability_is_not_asked(recorded):
    gw, _ = recorded
    response = modern_post(gw.url, "tools/call", {"name": "up__elicit", "arguments": {"message": "who?"}})
    result = final_message(response)["result"]
    assert result["resultType"] == "complete" and result["isError"] is True
    assert "elicitation" in result["content"][0]["text"]


@pytest.mark.parametrize("lenient", [True, False])
def test_claude_connectors_version_header_quirk_is_served_unless_strict(upstreams, gateway, lenient):
    _, url = upstreams("--name", "up", "--tools", "1")
    gw = gateway(
        {
            "server": {"lenient_version_header": lenient},
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
    )
    # anthropics/claude-code#93290: a 2026-07-28 body under a 2025-11-25 header.
    response = modern_post(
        gw.url, "tools/call", {"name": "up__tool_0", "arguments": {}}, headers={"mcp-protocol-version": LEGACY}
    )
    if lenient:
        assert response.status_code == 200
        assert final_message(response)["result"]["resultType"] == "complete"
    else:
        assert response.status_code == 400 and response.json()["error"]["code"] == -32020


def test_a_parked_call_the_client_never_resumes_is_cancelled_upstream(upstreams, gateway, tmp_path):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "0", "--record", str(record))
    gw = gateway(
        {
            "server": {"input_wait": 1},
            "upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": LEGACY}},
        },
        upstreams_ready=1,
    )
    first = modern_post(
        gw.url, "tools/call", {"name": "up__elicit", "arguments": {"message": "who?"}}, capabilities={"elicitation": {}}
    )
    assert final_message(first)["result"]["resultType"] == "input_required"
    assert gw.readyz()["parked_calls"] == 1
    deadline = time.monotonic() + 5
    while gw.readyz()["parked_calls"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gw.readyz()["parked_calls"] == 0
    while time.monotonic() < deadline:
        if any(r.get("method") == "notifications/cancelled" for r in read_records(record)):
            break
        time.sleep(0.1)
    assert any(r.get("method") == "notifications/cancelled" for r in read_records(record))
