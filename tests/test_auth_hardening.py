"""Tokens the gateway must refuse however they are presented, and unknown tokens that must not become
load on the authorization server: a real gateway process in front of the real test authorization
server, which records every introspection request it gets."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.oauth import AuthServer, bearer
from tests.support.processes import read_records
from tests.support.wire import ACCEPT, envelope, final_message, initialize_body, modern_headers, modern_post

# The introspection defaults (config/auth.py): what a gateway without explicit settings does.
RATE, BURST = 20.0, 40


@pytest.fixture
def recorded_auth_server(tmp_path: Path) -> Iterator[tuple[AuthServer, Path]]:
    record = tmp_path / "as.jsonl"
    server = AuthServer("--record", str(record))
    yield server, record
    server.stop()


def _gateway(gateway, upstreams, auth_server: AuthServer, **introspection):
    _, url = upstreams("--name", "up", "--tools", "1")
    issuer = auth_server.issuer_config(introspection={**auth_server.introspection(), **introspection})
    return gateway(
        {"auth": {"issuers": [issuer]}, "upstreams": {"up": {"transport": "streamable_http", "url": url}}},
        upstreams_ready=1,
    )


def _introspected(record: Path, tokens: set[str] | None = None) -> int:
    entries = [e for e in read_records(record) if e["path"] == "/introspect"]
    return len([e for e in entries if tokens is None or e["token"] in tokens])


def _call(url: str, headers: dict[str, str]) -> httpx.Response:
    return modern_post(url, "tools/call", {"name": "up__tool_0", "arguments": {}}, headers=headers)


async def _flood(url: str, tokens: list[str], known: dict[str, str], concurrency: int = 40) -> list[httpx.Response]:
    """Every token once, `concurrency` at a time, as an attacker would; the known caller calls in between."""
    params = {"name": "up__tool_0", "arguments": {}, "_meta": envelope()}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    headers = modern_headers("tools/call", params)
    pending = iter(tokens)
    answers: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=concurrency + 1)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def attacker() -> None:
            for token in pending:
                answers.append(await client.post(url, json=body, headers={**headers, **bearer(token)}))

        async def known_caller() -> None:
            for _ in range(10):  # a caller whose token is verified already is never held up by the flood
                answer = await client.post(url, json=body, headers={**headers, **known})
                assert answer.status_code == 200, answer.text
                await asyncio.sleep(0.05)

        await asyncio.gather(known_caller(), *(attacker() for _ in range(concurrency)))
    return answers


def _refused(response: httpx.Response, description: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and description in challenge, challenge


def _both_eras(url: str, headers: dict[str, str]) -> list[httpx.Response]:
    return [_call(url, headers), httpx.post(url, json=initialize_body(), headers={**ACCEPT, **headers})]


# -- item 3: audience and subject -------------------------------------------------------------------------


def test_an_introspected_token_must_name_this_gateway_as_its_audience(upstreams, gateway, recorded_auth_server):
    auth_server, _ = recorded_auth_server
    gw = _gateway(gateway, upstreams, auth_server)
    assert final_message(_call(gw.url, bearer(auth_server.mint_opaque(aud=gw.url))))["result"]
    for response in _both_eras(gw.url, bearer(auth_server.mint_opaque(omit=("aud",)))):
        _refused(response, "token names no audience")
    for response in _both_eras(gw.url, bearer(auth_server.mint_opaque(aud="https://other.example/mcp"))):
        _refused(response, "token audience is not this gateway")


def test_an_operator_may_accept_introspection_answers_that_carry_no_audience(upstreams, gateway, recorded_auth_server):
    auth_server, _ = recorded_auth_server
    gw = _gateway(gateway, upstreams, auth_server, require_audience=False)
    without = auth_server.mint_opaque(omit=("aud",))
    assert final_message(_call(gw.url, bearer(without)))["result"]["resultType"] == "complete"
    # Lenient about a missing audience only: one that is sent must still be this gateway, and a subject is a must.
    _refused(_call(gw.url, bearer(auth_server.mint_opaque(aud="https://other.example/mcp"))), "audience")
    _refused(_call(gw.url, bearer(auth_server.mint_opaque(omit=("aud", "sub")))), "token names no subject")


def test_tokens_without_a_subject_are_refused_so_they_cannot_share_a_caller(upstreams, gateway, recorded_auth_server):
    auth_server, _ = recorded_auth_server
    gw = _gateway(gateway, upstreams, auth_server)
    subjectless = [
        auth_server.mint_opaque(aud=gw.url, omit=("sub",)),
        auth_server.mint_opaque(aud=gw.url, omit=("sub",)),  # a second one: before, the same caller as the first
        auth_server.mint_opaque(aud=gw.url, sub=""),
        auth_server.mint(aud=gw.url, omit=("sub",)),  # JWTs get the same rule (RFC 9068 §2.2)
        auth_server.mint(aud=gw.url, sub=""),
        auth_server.mint(aud=gw.url, sub=42),
    ]
    for token in subjectless:
        for response in _both_eras(gw.url, bearer(token)):
            _refused(response, "token names no subject")
    # Callers with a subject are still told apart by it: one's session is unknown to the other.
    alice, bob = (bearer(auth_server.mint_opaque(aud=gw.url, sub=who)) for who in ("alice", "bob"))
    opened = httpx.post(gw.url, json=initialize_body(), headers={**ACCEPT, **alice})
    session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "up__tool_0", "arguments": {}}}
    assert httpx.post(gw.url, json=call, headers={**ACCEPT, **alice, **session}).status_code == 200
    assert httpx.post(gw.url, json=call, headers={**ACCEPT, **bob, **session}).status_code == 404


# -- item 4: unknown opaque tokens --------------------------------------------------------------------------


def test_a_flood_of_unknown_tokens_costs_a_bounded_number_of_introspections(upstreams, gateway, recorded_auth_server):
    auth_server, record = recorded_auth_server
    gw = _gateway(gateway, upstreams, auth_server)
    known = bearer(auth_server.mint_opaque(aud=gw.url, sub="alice"))
    assert _call(gw.url, known).status_code == 200  # verified once, then served from the gateway's cache
    flood = [f"made-up-{secrets.token_urlsafe(24)}" for _ in range(300)]
    started = time.monotonic()
    answers = asyncio.run(_flood(gw.url, flood, known))
    elapsed = time.monotonic() - started
    statuses = Counter(answer.status_code for answer in answers)
    throttled = next((a for a in answers if a.status_code == 503), None)
    asked = _introspected(record, set(flood))
    bound = BURST + RATE * elapsed + 1
    print(
        f"{len(flood)} made-up tokens in {elapsed:.2f}s: {asked} introspections (bound {bound:.0f}), {dict(statuses)}"
    )
    assert asked <= bound, (asked, bound, elapsed)
    assert statuses[401] == asked and statuses[503] == len(flood) - asked
    assert throttled is not None
    assert int(throttled.headers["retry-after"]) >= 1
    assert "too many unknown tokens" in throttled.json()["error"]["message"]
    assert "www-authenticate" not in throttled.headers  # not invalid_token: a good token may be in the wait
    # Once the budget refills, a new good token is checked and served.
    time.sleep(1.0)
    assert _call(gw.url, bearer(auth_server.mint_opaque(aud=gw.url, sub="bob"))).status_code == 200


def test_a_repeated_bad_token_is_answered_from_the_negative_cache(upstreams, gateway, recorded_auth_server):
    auth_server, record = recorded_auth_server
    gw = _gateway(gateway, upstreams, auth_server)
    bad = "opaque-token-nobody-issued"
    subjectless = auth_server.mint_opaque(aud=gw.url, omit=("sub",))
    for _ in range(20):
        _refused(_call(gw.url, bearer(bad)), "token is not active")
    assert _introspected(record, {bad}) == 1
    for _ in range(20):  # active, but refused by the gateway's own rules: remembered all the same
        _refused(_call(gw.url, bearer(subjectless)), "token names no subject")
    assert _introspected(record, {subjectless}) == 1
