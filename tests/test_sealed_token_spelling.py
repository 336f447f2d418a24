"""A sealed token (session id, `requestState`) has one spelling: the gateway refuses every other way of
writing the same bytes in base64url, so an ended session cannot come back under a re-spelled id."""

from __future__ import annotations

import httpx
import pytest

from tests.support.processes import read_records
from tests.support.respell import respellings
from tests.support.wire import ACCEPT, final_message, initialize_body, modern_post

LEGACY = "2025-11-25"
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "up__tool_0", "arguments": {}}}


@pytest.fixture
def recorded(upstreams, gateway, tmp_path):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record))
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": LEGACY}}}, upstreams_ready=1
    )
    return gw, record


def _open_session(url: str) -> str:
    """A session whose id has every kind of other spelling (a `-` or `_`, and trailing bits)."""
    for attempt in range(200):
        init = initialize_body()
        init["params"]["clientInfo"]["name"] = "t" * (1 + attempt % 3)  # varies the id's length mod 3
        sid = httpx.post(url, json=init, headers=ACCEPT).headers["mcp-session-id"]
        if {"standard alphabet", "non-zero trailing bits"} <= set(respellings(sid)):
            return sid
    raise AssertionError("no session id with every kind of respelling")


def _call(url: str, sid: str) -> httpx.Response:
    return httpx.post(url, json=CALL, headers={**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": LEGACY})


def test_a_deleted_session_does_not_come_back_under_another_spelling_of_its_id(recorded):
    gw, record = recorded
    sid = _open_session(gw.url)
    assert _call(gw.url, sid).status_code == 200
    ended = httpx.delete(gw.url, headers={"mcp-session-id": sid, "mcp-protocol-version": LEGACY})
    assert ended.status_code in (200, 204)
    assert _call(gw.url, sid).status_code == 404
    for name, variant in respellings(sid).items():
        assert _call(gw.url, variant).status_code == 404, name
        gone = httpx.delete(gw.url, headers={"mcp-session-id": variant, "mcp-protocol-version": LEGACY})
        assert gone.status_code == 404, name
    assert len([r for r in read_records(record) if r.get("method") == "tools/call"]) == 1


def test_a_live_session_is_known_by_one_spelling_of_its_id(recorded):
    gw, record = recorded
    sid = _open_session(gw.url)
    for name, variant in respellings(sid).items():  # neither another name for it nor a second session
        assert _call(gw.url, variant).status_code == 404, name
    assert _call(gw.url, sid).status_code == 200
    assert len([r for r in read_records(record) if r.get("method") == "tools/call"]) == 1


def test_a_request_state_is_accepted_in_its_own_spelling_only(recorded):
    gw, record = recorded
    capabilities = {"elicitation": {}}
    params = {"name": "up__elicit", "arguments": {"message": "who?"}}
    first = final_message(modern_post(gw.url, "tools/call", params, capabilities=capabilities))["result"]
    assert first["resultType"] == "input_required"
    [key] = first["inputRequests"]
    prefix, sealed = first["requestState"][:4], first["requestState"][4:]
    assert prefix == "gw1."

    def retry(state: str) -> httpx.Response:
        answer = {key: {"action": "accept", "content": {"name": "octocat"}}}
        retried = {**params, "inputResponses": answer, "requestState": state}
        return modern_post(gw.url, "tools/call", retried, capabilities=capabilities, request_id=2)

    for name, variant in respellings(sealed).items():
        refused = retry(prefix + variant)
        assert refused.status_code == 400, (name, refused.text)
        assert "requestState is invalid" in refused.json()["error"]["message"], name
    done = final_message(retry(first["requestState"]))["result"]  # the parked call survived every refusal
    assert done["resultType"] == "complete"
    assert len([r for r in read_records(record) if r.get("name") == "elicit"]) == 1
