"""The message layer under random input, on both fronts and in both eras (hypothesis): any JSON-RPC shape,
id, params and headers. The gateway never answers 500, never exits, keeps serving, and never forwards a call
that the policy refuses for the canonical form of what it names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import Gateway, Proc, read_records, scripted_server
from tests.support.stdio_raw import RawStdio
from tests.support.wire import MODERN, envelope, initialize_body

POLICY = {
    "tenants": ["*"],
    "default": "allow",
    "rules": [
        {"name": "no-tool-1", "effect": "deny", "targets": {"tools": ["up__tool_1"]}},
        {"name": "public-only", "effect": "deny", "targets": {"resources": ["up://up__tpl0/private/*"]}},
    ],
}
METHODS = [
    "tools/call", "tools/list", "prompts/get", "prompts/list", "resources/read", "resources/list",
    "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "completion/complete",
    "subscriptions/listen", "server/discover", "initialize", "ping", "logging/setLevel",
    "notifications/cancelled", "notifications/initialized",
]  # fmt: skip
NAMES = ["up__tool_0", "up__tool_1", "UP__TOOL_1", "up__tool_1 ", "up__tool_1\x00", "up__tool_1/..", "nope", ""]
URIS = [
    "up://up__tpl0/pub/a",
    "up://up__tpl0/private/a",
    "up://up__tpl0/pub/../private/a",
    "up://up__tpl0/pub/%2e%2e/private/a",
    "up://up__tpl0/pub/..%2fprivate/a",
    "UP://up__tpl0/private/a",
    "up://up__tpl0/%70rivate/a",
    "up://up__tpl0/private/./a",
]

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=20),
)  # fmt: skip
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
ids = st.one_of(json_leaf, st.lists(json_leaf, max_size=2), st.dictionaries(st.text(max_size=3), json_leaf, max_size=2))
meta = st.one_of(st.just(None), st.just(envelope()), st.just(envelope({"sampling": {}})), json_value)
params = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(NAMES), st.text(max_size=30)),
        "uri": st.one_of(st.sampled_from(URIS), st.text(max_size=30)),
        "arguments": json_value,
        "ref": st.one_of(
            st.fixed_dictionaries({"type": st.just("ref/resource"), "uri": st.sampled_from(URIS)}),
            st.fixed_dictionaries({"type": st.just("ref/prompt"), "name": st.sampled_from(NAMES)}),
            json_value,
        ),
        "notifications": st.one_of(
            st.fixed_dictionaries({"resourceSubscriptions": st.lists(st.sampled_from(URIS), max_size=4)}), json_value
        ),
        "cursor": json_value,
        "level": st.one_of(st.just("debug"), json_value),
        "requestId": ids,
        "_meta": meta,
    },
)
messages = st.fixed_dictionaries(
    {"jsonrpc": st.one_of(st.just("2.0"), st.just("2.0"), json_leaf)},
    optional={"id": ids, "method": st.one_of(st.sampled_from(METHODS), st.text(max_size=12)), "params": st.one_of(params, json_value)},
)  # fmt: skip
bodies = st.one_of(
    messages.map(lambda m: json.dumps(m).encode()),
    st.lists(messages, max_size=2).map(lambda m: json.dumps(m).encode()),
    st.binary(max_size=40),
)
# What an HTTP client can send at all: visible ASCII, no surrounding whitespace (h11 refuses the rest).
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=24).map(str.strip)
headers = st.fixed_dictionaries(
    {},
    optional={
        "mcp-protocol-version": st.one_of(st.sampled_from([MODERN, "2025-11-25", "1999-01-01"]), header_values),
        "mcp-method": st.one_of(st.sampled_from(METHODS), header_values),
        "mcp-name": st.one_of(
            st.sampled_from([n for n in NAMES + URIS if n == n.strip() and "\x00" not in n]), header_values
        ),
        "content-type": st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"]),
        "accept": st.sampled_from(["application/json, text/event-stream", "text/event-stream", "*/*"]),
    },
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    record = tmp / "up.jsonl"
    upstream: Proc
    upstream, url = scripted_server("--name", "up", "--tools", "2", "--templates", "1", "--record", str(record))
    (tmp / "policies").mkdir()
    (tmp / "policies" / "p.yaml").write_text(yaml.safe_dump(POLICY))
    config = {
        "upstreams": {"up": {"transport": "streamable_http", "url": url, "timeout": 5}},
        "policies": {"dir": str(tmp / "policies")},
        "auth": {"allow_anonymous": True},
    }
    http = Gateway(config, tmp)
    http.wait_ready(upstreams_ready=1)
    stdio_config = tmp / "stdio.yaml"
    stdio_config.write_text(yaml.safe_dump(config))
    stdio = RawStdio(stdio_config)
    try:
        with httpx.Client(timeout=10) as client:
            opened = client.post(
                http.url, json=initialize_body(), headers={"accept": "application/json, text/event-stream"}
            )
            yield {
                "http": http,
                "client": client,
                "sid": opened.headers["mcp-session-id"],
                "stdio": stdio,
                "record": record,
                "sentinel": iter(range(10**9)),
            }
    finally:
        stdio.close()
        http.stop()
        upstream.kill()


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(body=bodies, sent=headers, with_session=st.booleans())
def test_http_never_answers_500_and_keeps_serving(
    world: dict[str, Any], body: bytes, sent: dict, with_session: bool
) -> None:
    http: Gateway = world["http"]
    request_headers = {"accept": "application/json, text/event-stream", "content-type": "application/json", **sent}
    if with_session:
        request_headers["mcp-session-id"] = world["sid"]
    answer = world["client"].post(http.url, content=body, headers=request_headers)
    assert answer.status_code < 500, (body, sent, answer.status_code, answer.text[:300])
    assert http.proc.popen.poll() is None


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(body=bodies)
def test_stdio_never_exits_and_answers_the_next_request(world: dict[str, Any], body: bytes) -> None:
    stdio: RawStdio = world["stdio"]
    stdio.send(body.replace(b"\n", b" ").replace(b"\r", b" ") or b" ")
    sentinel = f"sentinel-{next(world['sentinel'])}"
    answer = stdio.ask({"jsonrpc": "2.0", "id": sentinel, "method": "ping"})
    assert answer["result"] == {}
    assert stdio.alive


def test_nothing_the_policy_refuses_reached_the_upstream(world: dict[str, Any]) -> None:
    """Runs after the fuzzing (file order): every forwarded call was allowed in its canonical form."""
    from mcp_gateway.catalog.uris import canonical_uri

    assert world["client"].get(world["http"].url.replace("/mcp", "/healthz")).text == "ok"
    records = read_records(Path(world["record"]))
    assert not [r for r in records if r.get("method") == "tools/call" and r.get("name") == "tool_1"]
    for record in records:
        uri = record.get("uri")
        if isinstance(uri, str):
            assert not canonical_uri(uri).startswith("up://tpl0/private/"), record
