"""The gateway as an OAuth 2.1 resource server, against a real authorization server on 127.0.0.1.

Every bad credential must get its exact status and `WWW-Authenticate` challenge, and must never reach
an upstream (the upstream records every message it receives).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.oauth import AuthServer, bearer
from tests.support.processes import read_records
from tests.support.wire import ACCEPT, final_message, initialize_body, modern_post

API_KEY = "mgw_test_key_for_the_ci_bot"
LEGACY = "2025-11-25"


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    server = AuthServer()
    yield server
    server.stop()


@pytest.fixture
def protected(upstreams, gateway, auth_server, tmp_path):
    """A gateway that trusts the authorization server (JWTs and introspection) and one API key."""
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record))
    gw = gateway(
        {
            "auth": {
                "issuers": [
                    auth_server.issuer_config(introspection=auth_server.introspection(), jwks_refetch_interval=0.5)
                ],
                "api_keys": [
                    {
                        "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                        "tenant": "ci",
                        "subject": "ci-bot",
                        "scopes": ["mcp:tools"],
                    }
                ],
                "scopes_supported": ["mcp:tools", "repo:read"],
                "required_scopes": ["mcp:tools"],
            },
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
    )
    return gw, record


def _tool_calls(record) -> list[dict]:
    return [r for r in read_records(record) if r.get("method") == "tools/call"]


def _call(url: str, headers: dict[str, str]) -> httpx.Response:
    return modern_post(url, "tools/call", {"name": "up__tool_0", "arguments": {}}, headers=headers)


def test_protected_resource_metadata_is_served_at_both_well_known_paths(protected, auth_server):
    gw, _ = protected
    base = f"http://127.0.0.1:{gw.port}"
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        document = httpx.get(base + path).json()
        assert document["resource"] == gw.url
        assert document["authorization_servers"] == [auth_server.issuer]
        assert document["scopes_supported"] == ["mcp:tools", "repo:read"]
        assert document["bearer_methods_supported"] == ["header"]


def test_valid_credentials_are_served(protected, auth_server):
    gw, record = protected
    token = auth_server.mint(aud=gw.url)
    assert final_message(_call(gw.url, bearer(token)))["result"]["resultType"] == "complete"
    assert final_message(_call(gw.url, {"x-api-key": API_KEY}))["result"]["resultType"] == "complete"
    assert final_message(_call(gw.url, bearer(API_KEY)))["result"]["resultType"] == "complete"
    opaque = auth_server.mint_opaque(aud=gw.url)
    assert final_message(_call(gw.url, bearer(opaque)))["result"]["resultType"] == "complete"
    assert len(_tool_calls(record)) == 4


BAD = [
    # (case, how to make the credential headers, status, expected error attribute or None)
    ("no token", lambda a, gw: {}, 401, None),
    ("not bearer", lambda a, gw: {"authorization": "Basic Zm9vOmJhcg=="}, 401, "invalid_token"),
    ("malformed token", lambda a, gw: bearer("abc.def.ghi"), 401, "invalid_token"),
    ("bad signature", lambda a, gw: bearer(a.mint(aud=gw.url, sign="tampered")), 401, "invalid_token"),
    ("alg none", lambda a, gw: bearer(a.mint(aud=gw.url, sign="none")), 401, "invalid_token"),
    ("expired", lambda a, gw: bearer(a.mint(aud=gw.url, exp=int(time.time()) - 300)), 401, "invalid_token"),
    ("not yet valid", lambda a, gw: bearer(a.mint(aud=gw.url, nbf=int(time.time()) + 600)), 401, "invalid_token"),
    ("wrong issuer", lambda a, gw: bearer(a.mint(aud=gw.url, iss="https://evil.example")), 401, "invalid_token"),
    ("wrong audience", lambda a, gw: bearer(a.mint(aud="https://other.example/mcp")), 401, "invalid_token"),
    ("unknown kid", lambda a, gw: bearer(a.mint(aud=gw.url, sign="unknown")), 401, "invalid_token"),
    ("missing scope", lambda a, gw: bearer(a.mint(aud=gw.url, scope="repo:read")), 403, "insufficient_scope"),
    ("wrong API key", lambda a, gw: {"x-api-key": "mgw_not_a_key"}, 401, "invalid_token"),
    ("unknown opaque token", lambda a, gw: bearer("opaque-token-nobody-issued"), 401, "invalid_token"),
]


@pytest.mark.parametrize(("make", "status", "error"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_each_bad_credential_gets_its_status_and_challenge_and_reaches_no_upstream(
    protected, auth_server, make, status, error
):
    gw, record = protected
    headers = make(auth_server, gw)
    for era in ("modern", "legacy"):
        if era == "modern":
            response = _call(gw.url, headers)
        else:
            init = initialize_body()
            response = httpx.post(gw.url, json=init, headers={**ACCEPT, **headers})
        assert response.status_code == status, (era, response.text)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="http://127.0.0.1:{gw.port}/.well-known/oauth-protected-resource/mcp"' in challenge
        scope = challenge.split('scope="', 1)[1].split('"', 1)[0].split()
        assert "mcp:tools" in scope  # what the operation needs, so the client can ask for it
        if error is None:
            assert "error=" not in challenge  # RFC 6750 §3.1: no error code without credentials
        else:
            assert f'error="{error}"' in challenge
    assert _tool_calls(record) == []


def test_a_revoked_opaque_token_stops_working(upstreams, gateway, auth_server, tmp_path):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record))
    issuer = auth_server.issuer_config(introspection={**auth_server.introspection(), "cache_seconds": 0})
    gw = gateway(
        {"auth": {"issuers": [issuer]}, "upstreams": {"up": {"transport": "streamable_http", "url": url}}},
        upstreams_ready=1,
    )
    opaque = auth_server.mint_opaque(aud=gw.url)
    assert _call(gw.url, bearer(opaque)).status_code == 200
    auth_server.revoke(opaque)
    time.sleep(0.1)
    refused = _call(gw.url, bearer(opaque))
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert len(_tool_calls(record)) == 1


def test_a_rotated_signing_key_is_fetched_once_it_is_used(protected, auth_server):
    gw, _ = protected
    auth_server.rotate()
    time.sleep(0.6)  # jwks_refetch_interval
    token = auth_server.mint(aud=gw.url)
    assert _call(gw.url, bearer(token)).status_code == 200


def test_a_session_opened_by_one_caller_is_unknown_to_another(protected, auth_server):
    gw, _ = protected
    alice = bearer(auth_server.mint(aud=gw.url, sub="alice"))
    bob = bearer(auth_server.mint(aud=gw.url, sub="bob", tenant="support"))
    init = initialize_body()
    opened = httpx.post(gw.url, json=init, headers={**ACCEPT, **alice})
    session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": LEGACY}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "up__tool_0", "arguments": {}}}
    assert httpx.post(gw.url, json=call, headers={**ACCEPT, **alice, **session}).status_code == 200
    assert httpx.post(gw.url, json=call, headers={**ACCEPT, **bob, **session}).status_code == 404


def test_tenants_see_only_the_upstreams_their_scopes_allow_and_step_up_is_a_403(
    upstreams, gateway, auth_server, tmp_path
):
    record = tmp_path / "repo.jsonl"
    _, open_url = upstreams("--name", "open", "--tools", "1", "--no-special-tools")
    _, repo_url = upstreams("--name", "repo", "--tools", "2", "--no-special-tools", "--record", str(record))
    gw = gateway(
        {
            "auth": {"issuers": [auth_server.issuer_config()], "required_scopes": ["mcp:tools"]},
            "upstreams": {
                "open": {"transport": "streamable_http", "url": open_url},
                "repo": {
                    "transport": "streamable_http",
                    "url": repo_url,
                    "required_scopes": ["repo:read"],
                    "tool_scopes": {"tool_1": ["repo:write"]},
                },
            },
        },
        upstreams_ready=2,
    )
    engineer = bearer(auth_server.mint(aud=gw.url, sub="alice", scope="mcp:tools repo:read"))
    support = bearer(auth_server.mint(aud=gw.url, sub="bob", tenant="support", scope="mcp:tools"))

    def tools(headers: dict[str, str]) -> set[str]:
        return {t["name"] for t in modern_post(gw.url, "tools/list", headers=headers).json()["result"]["tools"]}

    assert tools(engineer) == {"open__tool_0", "repo__tool_0", "repo__tool_1"}
    assert tools(support) == {"open__tool_0"}

    # The support caller knows the name anyway: a 403 that names every scope the call needs.
    denied = modern_post(gw.url, "tools/call", {"name": "repo__tool_0", "arguments": {}}, headers=support)
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert 'scope="mcp:tools repo:read"' in denied.headers["www-authenticate"]
    # A tool-level scope: visible to the engineer, usable only after stepping up to repo:write.
    step_up = modern_post(gw.url, "tools/call", {"name": "repo__tool_1", "arguments": {}}, headers=engineer)
    assert step_up.status_code == 403
    assert 'scope="mcp:tools repo:read repo:write"' in step_up.headers["www-authenticate"]
    assert _tool_calls(record) == []
    stepped = bearer(auth_server.mint(aud=gw.url, sub="alice", scope="mcp:tools repo:read repo:write"))
    done = modern_post(gw.url, "tools/call", {"name": "repo__tool_1", "arguments": {"x": 1}}, headers=stepped)
    assert json.loads(final_message(done)["result"]["content"][0]["text"])["arguments"] == {"x": 1}


def test_serve_refuses_to_start_without_an_explicit_auth_choice(tmp_path):
    from tests.support.processes import Gateway

    gw = Gateway({"auth": None, "upstreams": {}}, tmp_path)
    try:
        assert gw.proc.popen.wait(20) == 2
        assert "nothing authenticates callers" in "".join(gw.proc.output)
    finally:
        gw.stop()


# -- the SDK client logs in -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_sdk_client_logs_in_through_the_authorization_server_and_calls_tools(protected, auth_server):
    from urllib.parse import parse_qs, urlsplit

    import httpx2
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider, TokenStorage
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

    gw, record = protected

    class Memory(TokenStorage):
        def __init__(self) -> None:
            self.tokens = self.client = None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens) -> None:
            self.tokens = tokens

        async def get_client_info(self):
            return self.client

        async def set_client_info(self, client) -> None:
            self.client = client

    redirected: dict[str, str] = {}

    async def open_browser(url: str) -> None:  # the "user" approves at once
        async with httpx.AsyncClient() as browser:
            response = await browser.get(url)
        assert response.status_code == 302, response.text
        redirected["location"] = response.headers["location"]

    async def callback() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(redirected["location"]).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

    storage = Memory()
    provider = OAuthClientProvider(
        gw.url,
        OAuthClientMetadata(
            redirect_uris=["http://127.0.0.1:3030/callback"], client_name="sdk test", scope="mcp:tools"
        ),
        storage,
        open_browser,
        callback,
    )
    for mode in ("2026-07-28", "legacy"):
        http = httpx2.AsyncClient(auth=provider, timeout=30)
        async with http, Client(streamable_http_client(gw.url, http_client=http), mode=mode, cache=None) as client:
            assert "up__tool_0" in {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("up__tool_0", {"who": mode})
            assert json.loads(result.content[0].text)["arguments"] == {"who": mode}
    assert storage.tokens is not None and storage.client is not None  # registered (DCR) and logged in once
    assert len(_tool_calls(record)) == 2
    requests = httpx.get(f"{auth_server.issuer}/test/requests").json()
    grants = [r["grant_type"] for r in requests]
    assert grants.count("authorization_code") == 1
    code_grant = next(r for r in requests if r["grant_type"] == "authorization_code")
    assert code_grant["resource"] == gw.url  # RFC 8707: the token is for this gateway


# -- upstream credentials ---------------------------------------------------------------------------------


def _received_tokens(record) -> list[str]:
    tokens = []
    for entry in read_records(record):
        value = (entry.get("headers") or {}).get("authorization", "")
        if value.startswith("Bearer "):
            tokens.append(value[7:])
    return tokens


@pytest.mark.parametrize("upstream_era", ["auto", LEGACY])
def test_an_upstream_gets_an_exchanged_token_per_caller_never_the_callers_own(
    upstreams, gateway, auth_server, tmp_path, upstream_era
):
    from tests.support.oauth import GATEWAY_CLIENT, claims_of

    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record), "--require-bearer")
    credentials = {
        "type": "token_exchange",
        "issuer": auth_server.issuer,
        "client_id": GATEWAY_CLIENT[0],
        "client_secret": GATEWAY_CLIENT[1],
    }
    gw = gateway(
        {
            "auth": {"issuers": [auth_server.issuer_config()]},
            "upstreams": {
                "up": {"transport": "streamable_http", "url": url, "credentials": credentials, "protocol": upstream_era}
            },
        },
        upstreams_ready=1,
    )
    alice = auth_server.mint(aud=gw.url, sub="alice")
    bob = auth_server.mint(aud=gw.url, sub="bob", tenant="support")
    for token in (alice, bob, alice):
        assert final_message(_call(gw.url, bearer(token)))["result"]["resultType"] == "complete"
    received = _received_tokens(record)
    assert alice not in received and bob not in received
    calls = [
        claims_of(e["headers"]["authorization"][7:]) for e in read_records(record) if e.get("method") == "tools/call"
    ]
    assert [c["sub"] for c in calls] == ["alice", "bob", "alice"]
    if upstream_era == LEGACY:
        # A handshake-era session belongs to the caller that opened it: one per caller, reused.
        sessions = [e["headers"]["mcp-session-id"] for e in read_records(record) if e.get("method") == "tools/call"]
        assert sessions[0] == sessions[2] != sessions[1]
    assert all(c["aud"] == url and c["act"] == {"sub": GATEWAY_CLIENT[0]} for c in calls)
    # The gateway's own traffic (discover/initialize, listing) used a client-credentials token.
    own = [claims_of(t) for t in received if claims_of(t)["sub"] == GATEWAY_CLIENT[0]]
    assert own and all(c["aud"] == url for c in own)
    # One exchange per caller: alice's second call reused hers.
    grants = [r["grant_type"] for r in httpx.get(f"{auth_server.issuer}/test/requests").json()]
    assert grants.count("urn:ietf:params:oauth:grant-type:token-exchange") == 2


def test_an_upstream_gets_the_configured_secret_or_a_per_subject_one(
    upstreams, gateway, auth_server, tmp_path, monkeypatch
):
    fixed_record, personal_record = tmp_path / "fixed.jsonl", tmp_path / "personal.jsonl"
    _, fixed_url = upstreams("--name", "fixed", "--tools", "1", "--record", str(fixed_record), "--require-bearer")
    _, personal_url = upstreams(
        "--name", "personal", "--tools", "1", "--record", str(personal_record), "--require-bearer"
    )
    secrets_file = tmp_path / "pats.yaml"
    secrets_file.write_text("alice: alice-personal-token\nsupport/bob: bob-personal-token\n")
    monkeypatch.setenv("FIXED_UPSTREAM_TOKEN", "the-fixed-upstream-token")
    gw = gateway(
        {
            "auth": {"issuers": [auth_server.issuer_config()]},
            "upstreams": {
                "fixed": {
                    "transport": "streamable_http",
                    "url": fixed_url,
                    "credentials": {"type": "header", "value": "${FIXED_UPSTREAM_TOKEN}"},
                },
                "personal": {
                    "transport": "streamable_http",
                    "url": personal_url,
                    "credentials": {"type": "per_subject", "file": str(secrets_file), "service_value": "gateway-own"},
                },
            },
        },
        upstreams_ready=2,
    )
    alice = auth_server.mint(aud=gw.url, sub="alice")
    bob = auth_server.mint(aud=gw.url, sub="bob", tenant="support")
    carol = auth_server.mint(aud=gw.url, sub="carol", tenant="eng")
    for token in (alice, bob):
        for tool in ("fixed__tool_0", "personal__tool_0"):
            response = modern_post(gw.url, "tools/call", {"name": tool, "arguments": {}}, headers=bearer(token))
            assert final_message(response)["result"]["resultType"] == "complete"
    assert set(_received_tokens(fixed_record)) == {"the-fixed-upstream-token"}
    personal_calls = [
        e["headers"]["authorization"] for e in read_records(personal_record) if e.get("method") == "tools/call"
    ]
    assert personal_calls == ["Bearer alice-personal-token", "Bearer bob-personal-token"]
    # A caller with no secret configured gets a clear error, and nothing reaches the upstream.
    refused = modern_post(gw.url, "tools/call", {"name": "personal__tool_0", "arguments": {}}, headers=bearer(carol))
    assert "no credential is configured for 'carol'" in refused.text
    assert len([e for e in read_records(personal_record) if e.get("method") == "tools/call"]) == 2


def test_an_upstream_gets_the_gateways_own_client_credentials_token(upstreams, gateway, auth_server, tmp_path):
    from tests.support.oauth import GATEWAY_CLIENT, claims_of

    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record), "--require-bearer")
    credentials = {
        "type": "client_credentials",
        "token_url": f"{auth_server.issuer}/token",
        "client_id": GATEWAY_CLIENT[0],
        "client_secret": GATEWAY_CLIENT[1],
        "scope": "mcp:tools",
        "auth_method": "client_secret_post",
    }
    gw = gateway(
        {
            "auth": {"issuers": [auth_server.issuer_config()]},
            "upstreams": {"up": {"transport": "streamable_http", "url": url, "credentials": credentials}},
        },
        upstreams_ready=1,
    )
    caller = auth_server.mint(aud=gw.url, sub="alice")
    for _ in range(3):
        assert final_message(_call(gw.url, bearer(caller)))["result"]["resultType"] == "complete"
    received = _received_tokens(record)
    assert caller not in received
    assert {claims_of(t)["sub"] for t in received} == {GATEWAY_CLIENT[0]}
    assert {claims_of(t)["aud"] for t in received} == {url}
    grants = [r["grant_type"] for r in httpx.get(f"{auth_server.issuer}/test/requests").json()]
    assert grants == ["client_credentials"]  # one token, reused for every request until it nears expiry


def test_per_subject_secrets_can_live_in_redis(upstreams, gateway, auth_server, tmp_path, redis_state):
    import redis

    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record), "--require-bearer")
    hash_name = f"{redis_state['key_prefix']}:pats"
    store = redis.Redis.from_url(redis_state["redis_url"])
    store.hset(hash_name, mapping={"alice": "alice-pat-from-redis", "support/bob": "bob-pat-from-redis"})
    try:
        credentials = {
            "type": "per_subject",
            "redis_hash": hash_name,
            "redis_url": redis_state["redis_url"],
            "service_value": "gateway-own",
        }
        gw = gateway(
            {
                "auth": {"issuers": [auth_server.issuer_config()]},
                "upstreams": {"up": {"transport": "streamable_http", "url": url, "credentials": credentials}},
            },
            upstreams_ready=1,
        )
        for subject, tenant in (("alice", "eng"), ("bob", "support")):
            token = auth_server.mint(aud=gw.url, sub=subject, tenant=tenant)
            assert final_message(_call(gw.url, bearer(token)))["result"]["resultType"] == "complete"
        calls = [e["headers"]["authorization"] for e in read_records(record) if e.get("method") == "tools/call"]
        assert calls == ["Bearer alice-pat-from-redis", "Bearer bob-pat-from-redis"]
    finally:
        store.delete(hash_name)
        store.close()


def test_several_issuers_are_trusted_at_once_each_with_its_own_keys(upstreams, gateway, auth_server):
    other = AuthServer()
    try:
        _, url = upstreams("--name", "up", "--tools", "1")
        gw = gateway(
            {
                "auth": {"issuers": [auth_server.issuer_config(), other.issuer_config(tenant="partner")]},
                "upstreams": {"up": {"transport": "streamable_http", "url": url}},
            },
            upstreams_ready=1,
        )
        assert _call(gw.url, bearer(auth_server.mint(aud=gw.url))).status_code == 200
        assert _call(gw.url, bearer(other.mint(aud=gw.url))).status_code == 200
        # A token naming the second issuer but signed by the first's key does not verify.
        forged = auth_server.mint(aud=gw.url, iss=other.issuer)
        refused = _call(gw.url, bearer(forged))
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    finally:
        other.stop()
