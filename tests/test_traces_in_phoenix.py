"""Traces as people read them in Arize Phoenix: every call groups into a session, protocol plumbing stays out of
the session's turns unless asked for, what the client sent is recorded even when the gateway answered itself,
metadata carries tenant, upstream and backend, and LLM spans show what each client sent and got in its own
format. Spans are read from a real OTLP receiver; `mcp-gateway llm prices` gives Phoenix the price table."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import openai
import pytest
import yaml

from tests.support.client import connect
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import ROOT, Gateway, llm_server
from tests.support.wire import modern_post

pytestmark = pytest.mark.anyio

KEY = "mgw_phoenix_key"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


@pytest.fixture(autouse=True)
def fresh(receiver: OtlpReceiver) -> None:
    receiver.clear()  # each test reads only its own spans


@pytest.fixture(scope="module")
def replay() -> Iterator[str]:
    proc, url = llm_server()
    yield url
    proc.kill()


def tracing(receiver: OtlpReceiver, **extra: Any) -> dict[str, Any]:
    return {"tracing": {"exporter": "otlp-http", "endpoint": receiver.url, **extra}}


def spans_where(receiver: OtlpReceiver, match: Any, count: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [span for span in receiver.spans() if match(span)]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} spans: {[s['name'] for s in receiver.spans()]}")


def _api_keys(*subjects: str) -> list[dict[str, str]]:
    return [
        {"sha256": hashlib.sha256(f"{KEY}_{s}".encode()).hexdigest(), "tenant": "acme", "subject": s} for s in subjects
    ]


async def test_calls_without_a_session_header_still_group_into_sessions(upstreams, gateway, receiver) -> None:
    _, url = upstreams("--name", "up")
    gw = gateway(
        {
            "auth": {"api_keys": _api_keys("ann", "bob")},
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
            "telemetry": tracing(receiver),
        },
        upstreams_ready=1,
    )
    for subject in ("ann", "ann", "bob"):
        response = modern_post(gw.url, "tools/call", {"name": "up__tool_0"}, headers={"x-api-key": f"{KEY}_{subject}"})
        assert response.status_code == 200
    spans = spans_where(receiver, lambda s: s["name"] == "tools/call up__tool_0", count=3)
    by_user = {}
    for span in spans:
        by_user.setdefault(span["attributes"]["user.id"], set()).add(span["attributes"]["session.id"])
    # 2026-07-28 has no session: a stable value per caller and client stands in for one.
    assert len(by_user["ann"]) == 1 and len(by_user["bob"]) == 1 and by_user["ann"] != by_user["bob"]
    assert next(iter(by_user["ann"])).startswith("mcp-")


async def test_a_handshake_era_session_is_the_session_of_its_spans(upstreams, gateway, receiver) -> None:
    _, url = upstreams("--name", "up")
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url}}, "telemetry": tracing(receiver)},
        upstreams_ready=1,
    )
    async with connect(gw.url, "legacy") as client:
        await client.call_tool("up__tool_1", {"n": 1})
        await client.call_tool("up__tool_2", {"n": 2})
    spans = spans_where(receiver, lambda s: s["name"] in ("tools/call up__tool_1", "tools/call up__tool_2"), 2)
    sessions = {span["attributes"]["session.id"] for span in spans}
    digest = "mcp-" + hashlib.sha256(spans[0]["attributes"]["mcp.session.id"].encode()).hexdigest()[:24]
    assert sessions == {digest}  # one session, named by a short digest of its Mcp-Session-Id


async def test_plumbing_spans_when_asked_for_and_lists_show_what_they_listed(upstreams, gateway, receiver) -> None:
    _, url = upstreams("--name", "plumb", "--tools", "2", "--no-special-tools")
    gw = gateway(
        {
            "upstreams": {"plumb": {"transport": "streamable_http", "url": url}},
            "telemetry": tracing(receiver, plumbing=True),
        },
        upstreams_ready=1,
    )
    async with connect(gw.url, "legacy") as client:
        await client.list_tools()
    async with connect(gw.url, "auto") as client:  # probes server/discover, then speaks 2026-07-28
        await client.list_tools()
    [initialize] = spans_where(receiver, lambda s: s["name"] == "initialize")  # traced like server/discover
    assert initialize["attributes"]["openinference.span.kind"] == "CHAIN"
    assert initialize["attributes"]["mcp.protocol.version"] == "2025-11-25"
    [discover] = spans_where(receiver, lambda s: s["name"] == "server/discover")
    assert discover["attributes"]["mcp.protocol.version"] == "2026-07-28"
    lists = spans_where(receiver, lambda s: s["name"] == "tools/list", 2)
    for span in lists:
        assert json.loads(span["attributes"]["output.value"]) == ["plumb__tool_0", "plumb__tool_1"]


async def test_calls_the_gateway_refuses_still_show_what_the_client_sent(upstreams, gateway, receiver, tmp_path):
    _, url = upstreams("--name", "up")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        yaml.safe_dump(
            {
                "tenants": ["*"],
                "default": "allow",
                "rules": [{"name": "no-tool-2", "effect": "deny", "targets": {"tools": ["up__tool_2"]}}],
                "limits": [{"name": "once", "per": "tenant", "rate": "1/minute", "targets": {"tools": ["up__tool_1"]}}],
            }
        )
    )
    gw = gateway(
        {
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
            "policies": {"dir": str(policies)},
            "telemetry": tracing(receiver),
        },
        upstreams_ready=1,
    )
    for name, arguments in [
        ("up__nope", {"a": "unknown"}),
        ("up__tool_2", {"a": "hidden"}),
        ("up__tool_1", {"a": "first"}),
        ("up__tool_1", {"a": "limited"}),
    ]:
        modern_post(gw.url, "tools/call", {"name": name, "arguments": arguments})
    spans = spans_where(receiver, lambda s: s["name"].startswith("tools/call up__"), 4)
    inputs = {json.loads(s["attributes"]["input.value"])["a"]: s["attributes"].get("error.type") for s in spans}
    assert inputs == {"unknown": "-32602", "hidden": "-32602", "first": None, "limited": "-32005"}
    metadata = json.loads(
        next(s for s in spans if s["attributes"].get("mcp_gateway.upstream"))["attributes"]["metadata"]
    )
    assert metadata == {"tenant": "default", "upstream": "up"}


def test_llm_spans_show_what_each_client_sent_and_got(replay, receiver, tmp_path) -> None:
    config = {
        "auth": {"api_keys": _api_keys("ann")},
        "telemetry": tracing(receiver),
        "llm": {
            "direct": True,
            "backends": {
                "replay": {"provider": "openai", "base_url": f"{replay}/v1", "api_key": "sk-replay"},
                "claude": {"provider": "anthropic", "base_url": replay, "api_key": "sk-ant"},
            },
        },
    }
    gw = Gateway(config, tmp_path)
    try:
        gw.wait_ready()
        base = f"http://127.0.0.1:{gw.port}"
        ant = anthropic.Anthropic(base_url=base, api_key=f"{KEY}_ann", max_retries=0)
        translated = ant.messages.create(
            model="replay/chat-basic", max_tokens=64, messages=[{"role": "user", "content": "Hello!"}]
        )
        native = ant.messages.create(model="claude/basic", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        oai = openai.OpenAI(base_url=f"{base}/v1", api_key=f"{KEY}_ann", max_retries=0)
        for _ in oai.chat.completions.create(
            model="replay/chat-streaming", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
        spans = spans_where(receiver, lambda s: s["attributes"].get("openinference.span.kind") == "LLM", 3)
    finally:
        gw.stop()
    by_model = {s["attributes"]["llm.request.model_name"]: s["attributes"] for s in spans}
    # An Anthropic client to a backend of another kind: its own request and answer, the translation beside them.
    seen = by_model["replay/chat-basic"]
    assert json.loads(seen["input.value"])["max_tokens"] == 64 and "max_completion_tokens" not in seen["input.value"]
    output = json.loads(seen["output.value"])
    assert output["type"] == "message" and output["content"][0]["text"] == translated.content[0].text
    assert json.loads(seen["mcp_gateway.llm.backend_request"])["messages"] == [{"role": "user", "content": "Hello!"}]
    assert json.loads(seen["mcp_gateway.llm.backend_response"])["object"] == "chat.completion"
    assert seen["llm.finish_reason"] == "stop"
    assert json.loads(seen["metadata"]) == {"tenant": "acme", "backend": "replay"}
    # Passed through to an Anthropic backend: nothing was translated, so nothing more to show.
    passed = by_model["claude/basic"]
    assert json.loads(passed["output.value"])["id"] == native.id
    assert "mcp_gateway.llm.backend_request" not in passed
    # A stream is recorded as the whole answer it added up to.
    streamed = by_model["replay/chat-streaming"]
    assert json.loads(streamed["output.value"])["object"] == "chat.completion"
    assert streamed["llm.finish_reason"] == "stop"


class _FakePhoenix(BaseHTTPRequestHandler):
    """Records GraphQL requests and answers as Phoenix does for models (a real Phoenix was checked by hand)."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.received.append({"path": self.path, "authorization": self.headers.get("authorization"), **body})
        if "generativeModels" in body["query"]:  # Phoenix 20.26's connection, one page
            edges = [{"node": {"id": "R2VuZXJhdGl2ZU1vZGVsOjE=", "name": "gpt-4o-mini (mcp-gateway)"}}]
            data = {"generativeModels": {"edges": edges, "pageInfo": {"hasNextPage": False, "endCursor": None}}}
        else:
            data = {"createModel" if "createModel" in body["query"] else "updateModel": {"__typename": "Payload"}}
        payload = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        return None


def test_the_price_table_in_phoenixs_form_printed_and_pushed(tmp_path) -> None:
    config = tmp_path / "gw.yaml"
    prices = {
        "gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075},
        "claude-*": {"input": 3, "output": 15},
    }
    config.write_text(yaml.safe_dump({"llm": {"backends": {}, "prices": prices}}, sort_keys=False))
    command = [sys.executable, "-m", "mcp_gateway", "llm", "prices", "--config", str(config)]
    printed = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    mini = next(model for model in printed if model["name"] == "gpt-4o-mini (mcp-gateway)")
    assert re.match(mini["namePattern"], "gpt-4o-mini-2024-07-18") and not re.match(mini["namePattern"], "gpt-4o")
    assert {c["tokenType"]: (c["kind"], c["costPerMillionTokens"]) for c in mini["costs"]} == {
        "input": ("PROMPT", 0.15),
        "output": ("COMPLETION", 0.6),
        "cache_read": ("PROMPT", 0.075),
        "cache_write": ("PROMPT", 0.15),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePhoenix)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        pushed = subprocess.run(
            [*command, "--phoenix", url], capture_output=True, text=True, cwd=ROOT, env={"PHOENIX_API_KEY": "px-key"}
        )
    finally:
        server.shutdown()
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.splitlines() == ["updated gpt-4o-mini (mcp-gateway)", "created claude-* (mcp-gateway)"]
    mutations = _FakePhoenix.received[1:]
    assert mutations[0]["variables"]["input"]["id"] == "R2VuZXJhdGl2ZU1vZGVsOjE="
    assert all(r["path"] == "/graphql" and r["authorization"] == "Bearer px-key" for r in _FakePhoenix.received)
