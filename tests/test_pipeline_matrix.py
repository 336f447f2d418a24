"""Every front takes every step: HTTP and stdio, each in both protocol eras, are served by one pipeline, so
each step has the same observable effect on each method whichever way the call came in.

Fronts: HTTP 2025-11-25, HTTP 2026-07-28 (one `serve` process), stdio 2025-11-25 and stdio 2026-07-28 (an
`mcp-gateway stdio` process per test), each with an API key of its own tenant. Methods: `tools/call`,
`prompts/get`, `resources/read`, `completion/complete` and the lists. Steps: a policy hide, a policy refusal,
a rate limit, a concurrency limit, an access-log line, a span, a metric, and sampling answered by the
gateway's LLM route. Where a step does not apply to a method it says so (lists are served from the catalog,
so limits do not count them; only a tool asks for sampling)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from tests.support.client import text_of
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import Gateway, Proc, free_port, llm_server, read_records, scripted_server

pytestmark = pytest.mark.anyio

FRONTS = {
    "http-legacy": ("http", "legacy"),
    "http-modern": ("http", "2026-07-28"),
    "stdio-legacy": ("stdio", "legacy"),
    "stdio-modern": ("stdio", "2026-07-28"),
}
KEYS = {front: f"mgw_matrix_{front.replace('-', '_')}" for front in FRONTS}
TRANSPORT = {"http": "tcp", "stdio": "pipe"}
PROTOCOL = {"legacy": "2025-11-25", "2026-07-28": "2026-07-28"}

POLICY = """
tenants: ["*"]
default: allow
rules:
  - {name: hide-tool, effect: deny, targets: {tools: ["up__tool_1"]}}
  - {name: hide-prompt, effect: deny, targets: {prompts: ["up__prompt_1"]}}
  - {name: hide-resource, effect: deny, targets: {resources: ["up://up__item/1"]}}
  - name: refuse-secret
    effect: deny
    targets: {tools: ["up__tool_2"], prompts: ["up__prompt_2"]}
    condition: 'has(args.topic) && args.topic == "secret"'
    message: "No secrets."
  - name: refuse-resource
    effect: deny
    targets: {resources: ["up://up__item/2"]}
    condition: 'principal.subject != "nobody"'
    message: "Not this one."
limits:
  - {name: rate-tool, per: tenant, rate: "2/minute", targets: {tools: ["up__tool_0"]}}
  - {name: rate-prompt, per: tenant, rate: "2/minute", targets: {prompts: ["up__prompt_0"]}}
  - {name: rate-resource, per: tenant, rate: "2/minute", targets: {resources: ["up://up__item/0"]}}
  - {name: rate-completion, per: tenant, rate: "2/minute", targets: {resources: ["up://up__tpl0/*"]}}
  - {name: one-sleep, per: tenant, concurrency: 1, targets: {tools: ["up__sleep"]}}
  - {name: one-slow, per: tenant, concurrency: 1, targets: {prompts: ["slow__*"], resources: ["slow://*"]}}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One upstream pair, an LLM backend for sampling, an OTLP receiver, and the configs of every front."""
    tmp = tmp_path_factory.mktemp("matrix")
    record = tmp / "up.jsonl"
    procs: list[Proc] = []
    up, up_url = scripted_server(
        "--name",
        "up",
        "--tools",
        "5",
        "--prompts",
        "4",
        "--resources",
        "4",
        "--templates",
        "1",
        "--record",
        str(record),
    )
    slow, slow_url = scripted_server(
        "--name", "slow", "--tools", "0", "--no-special-tools", "--prompts", "1", "--resources", "1",
        "--templates", "1", "--latency", "0.8",
    )  # fmt: skip
    llm, replay = llm_server()
    procs += [up, slow, llm]
    (tmp / "policies").mkdir()
    (tmp / "policies" / "matrix.yaml").write_text(POLICY)
    receiver = OtlpReceiver().start()
    base = {
        "auth": {
            "api_keys": [
                {"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": f"t-{front}", "subject": front}
                for front, key in KEYS.items()
            ]
        },
        "policies": {"dir": str(tmp / "policies")},
        "upstreams": {
            "up": {"transport": "streamable_http", "url": up_url},
            "slow": {"transport": "streamable_http", "url": slow_url},
        },
        "llm": {
            "backends": {"replay": {"provider": "openai", "base_url": f"{replay}/v1", "api_key": "sk-replay"}},
            "models": {"gpt-echo": {"targets": [{"backend": "replay", "model": "echo"}]}},
            "sampling_model": "gpt-echo",
        },
    }

    def config_for(kind: str) -> Path:
        telemetry = {
            "access_log": str(tmp / f"access-{kind}.jsonl"),
            "tracing": {"exporter": "otlp-http", "endpoint": receiver.url},
            "metrics": {"prometheus": True, "otlp": True, "otlp_interval": 0.5},
        }
        config = {**base, "telemetry": telemetry}
        if kind == "http":
            config["server"] = {"port": free_port()}
        path = tmp / f"gateway-{kind}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    stdio_config = config_for("stdio")
    http = Gateway(yaml.safe_load(config_for("http").read_text()), tmp)
    http.wait_ready(upstreams_ready=2)
    try:
        yield {
            "tmp": tmp,
            "record": record,
            "receiver": receiver,
            "http": http,
            "stdio_config": stdio_config,
            "replay": replay,
        }
    finally:
        http.stop()
        receiver.stop()
        for proc in procs:
            proc.kill()


@asynccontextmanager
async def client_for(world: dict[str, Any], front: str) -> AsyncIterator[Client]:
    kind, mode = FRONTS[front]
    if kind == "http":
        http = httpx2.AsyncClient(headers={"x-api-key": KEYS[front]}, timeout=30)
        async with http, Client(streamable_http_client(world["http"].url, http_client=http), mode=mode) as client:
            yield client
        return
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_gateway", "stdio", "--config", str(world["stdio_config"])],
        env={"MCP_GATEWAY_API_KEY": KEYS[front], "PATH": str(Path(sys.executable).parent)},
    )
    async with Client(params, mode=mode) as client:
        yield client


async def refused(call: Any) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await call
    return caught.value


def access_lines(world: dict[str, Any], front: str, since: float, until: Any) -> list[dict[str, Any]]:
    """The front's access-log lines written after `since`, once `until(lines)` holds (or 10 s passed)."""
    path = world["tmp"] / f"access-{FRONTS[front][0]}.jsonl"
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [line for line in read_records(path) if line.get("tenant") == f"t-{front}" and line["ts"] >= since]
        if until(found):
            break
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("front", FRONTS)
async def test_policy_hides_targets_from_lists_and_calls(world, front):
    async with client_for(world, front) as client:
        assert "up__tool_1" not in {t.name for t in (await client.list_tools()).tools}
        assert "up__prompt_1" not in {p.name for p in (await client.list_prompts()).prompts}
        assert "up://up__item/1" not in {str(r.uri) for r in (await client.list_resources()).resources}
        assert (await refused(client.call_tool("up__tool_1", {}))).error.message == "Unknown tool: up__tool_1"
        assert (await refused(client.get_prompt("up__prompt_1"))).error.message == "Unknown prompt: up__prompt_1"
        hidden = await refused(client.read_resource("up://up__item/1"))
        assert hidden.error.code in (-32002, -32602) and hidden.error.data["uri"] == "up://up__item/1"
        unknown = await refused(client.complete(PromptReference(name="up__prompt_1"), {"name": "topic", "value": "a"}))
        assert unknown.error.message == "Unknown prompt: up__prompt_1"
    calls = [r for r in read_records(world["record"]) if r.get("name") in ("tool_1", "prompt_1")]
    assert calls == []  # nothing hidden ever reached the upstream


@pytest.mark.parametrize("front", FRONTS)
async def test_policy_refuses_a_visible_target_naming_the_rule(world, front):
    async with client_for(world, front) as client:
        tool = await client.call_tool("up__tool_2", {"topic": "secret"})
        assert tool.is_error and "No secrets. (policy rule 'refuse-secret')" in text_of(tool)
        prompt = await refused(client.get_prompt("up__prompt_2", {"topic": "secret"}))
        assert prompt.error.code == -32602 and "refuse-secret" in prompt.error.message
        resource = await refused(client.read_resource("up://up__item/2"))
        assert resource.error.code == -32602 and "refuse-resource" in resource.error.message
        template = ResourceTemplateReference(uri="up://up__item/2")
        completion = await client.complete(template, {"name": "id", "value": "a"})
        assert completion.completion.values == []  # nothing to complete with
        assert not (await client.call_tool("up__tool_2", {"topic": "ok"})).is_error


@pytest.mark.parametrize("front", FRONTS)
async def test_a_rate_limit_counts_every_method_that_reaches_an_upstream(world, front):
    async with client_for(world, front) as client:
        checks = {
            "tools/call": lambda: client.call_tool("up__tool_0", {}),
            "prompts/get": lambda: client.get_prompt("up__prompt_0"),
            "resources/read": lambda: client.read_resource("up://up__item/0"),
            "completion/complete": lambda: client.complete(
                ResourceTemplateReference(uri="up://up__tpl0/{id}"), {"name": "id", "value": "a"}
            ),
        }
        for method, call in checks.items():
            for _ in range(2):
                await call()
            limited = await refused(call())
            assert limited.error.code == -32005 and limited.error.data["retryAfterSeconds"] >= 1, method
        for _ in range(4):  # lists are answered from the catalog: not counted
            await client.list_tools()


@pytest.mark.parametrize("front", FRONTS)
async def test_a_concurrency_limit_refuses_the_call_beyond_it(world, front):
    async with client_for(world, front) as client:
        pairs = {
            "tools/call": lambda: client.call_tool("up__sleep", {"seconds": 0.8}),
            "prompts/get": lambda: client.get_prompt("slow__prompt_0"),
            "resources/read": lambda: client.read_resource("slow://slow__item/0"),
            "completion/complete": lambda: client.complete(
                ResourceTemplateReference(uri="slow://slow__tpl0/{id}"), {"name": "id", "value": "a"}
            ),
        }
        for method, call in pairs.items():
            outcomes = await asyncio.gather(call(), _late(call), return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, MCPError)]
            assert len(errors) == 1 and errors[0].error.code == -32005, (method, outcomes)
            assert "already in flight" in errors[0].error.message


async def _late(call: Any) -> Any:
    await asyncio.sleep(0.2)  # the first call is in flight by then
    return await call()


@pytest.mark.parametrize("front", FRONTS)
async def test_every_call_leaves_one_access_log_line(world, front):
    since = time.time() - 0.01
    async with client_for(world, front) as client:
        await client.call_tool("up__tool_3", {"topic": "a"})
        await client.get_prompt("up__prompt_3")
        await client.read_resource("up://up__item/3")
        await client.complete(PromptReference(name="up__prompt_3"), {"name": "topic", "value": "a"})
        await client.list_tools()
    expected = [
        ("tools/call", "up__tool_3", "ok", "up"),
        ("prompts/get", "up__prompt_3", "ok", "up"),
        ("resources/read", "up://up__item/3", "ok", "up"),
        ("completion/complete", "up__prompt_3", "ok", "up"),
        ("tools/list", None, "ok", None),
    ]

    def cells(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(line["method"], line["target"], line["status"], line["upstream"]) for line in lines]

    lines = access_lines(world, front, since, lambda found: set(expected) <= set(cells(found)))
    seen = cells(lines)
    for cell in expected[:4]:
        assert seen.count(cell) == 1, (cell, seen)  # one line per call
    assert expected[4] in seen
    assert {line["protocol"] for line in lines} == {PROTOCOL[FRONTS[front][1]]}


@pytest.mark.parametrize("front", FRONTS)
async def test_every_call_is_a_span_and_plumbing_is_not(world, front):
    receiver: OtlpReceiver = world["receiver"]
    async with client_for(world, front) as client:
        await client.call_tool("up__tool_4", {"topic": "span"})
        await client.get_prompt("up__prompt_3", {"topic": "span"})
        await client.read_resource("up://up__item/3")
        await client.complete(PromptReference(name="up__prompt_3"), {"name": "topic", "value": "s"})
        await client.list_prompts()
    kinds = {
        "tools/call up__tool_4": "TOOL",
        "prompts/get up__prompt_3": "CHAIN",
        "resources/read": "RETRIEVER",
        "completion/complete": "CHAIN",
    }
    tenant = f"t-{front}"
    deadline = time.monotonic() + 15
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        mine = [s for s in receiver.spans() if s["attributes"].get("mcp_gateway.tenant") == tenant]
        if set(kinds) <= {s["name"] for s in mine}:
            break
        time.sleep(0.1)
    by_name = {s["name"]: s for s in mine}
    for name, kind in kinds.items():
        span = by_name[name]
        assert span["attributes"]["openinference.span.kind"] == kind, name
        assert span["attributes"]["network.transport"] == TRANSPORT[FRONTS[front][0]]
        assert span["attributes"]["session.id"], name  # grouped in Phoenix's Sessions view
    assert "prompts/list" not in by_name and not any(n.endswith("/list") for n in by_name)


@pytest.mark.parametrize("front", FRONTS)
async def test_every_call_is_counted_in_the_mcp_metrics(world, front):
    receiver: OtlpReceiver = world["receiver"]
    async with client_for(world, front) as client:
        await client.call_tool("up__tool_3", {})
        await client.get_prompt("up__prompt_3")
        await client.read_resource("up://up__item/3")
        await client.complete(PromptReference(name="up__prompt_3"), {"name": "topic", "value": "m"})
        await client.list_resources()
        await asyncio.sleep(1.2)  # one OTLP push interval and then some
    wanted = {"tools/call", "prompts/get", "resources/read", "completion/complete", "resources/list"}
    deadline = time.monotonic() + 15
    methods: set[str] = set()
    while time.monotonic() < deadline:
        methods = {
            point["attributes"].get("mcp.method.name")
            for metric in receiver.metrics()
            if metric["name"] == "mcp.server.operation.duration"
            for point in metric["data_points"]
            if point["attributes"].get("tenant") == f"t-{front}"
            and point["attributes"].get("network.transport") == TRANSPORT[FRONTS[front][0]]
        }
        if wanted <= methods:
            break
        time.sleep(0.2)
    assert wanted <= methods


@pytest.mark.parametrize("front", FRONTS)
async def test_sampling_is_answered_by_the_gateways_llm_route(world, front):
    since = time.time() - 0.01
    async with client_for(world, front) as client:  # the client itself cannot sample
        result = await client.call_tool("up__sample", {"prompt": "hello"})
    assert not result.is_error and text_of(result) == "pong"
    lines = access_lines(world, front, since, lambda found: any(x["method"] == "llm/chat" for x in found))
    [sampled] = [line for line in lines if line["method"] == "llm/chat"]
    assert sampled["original_model"] == "gpt-echo" and sampled["subject"] == front  # the caller's own budget


def test_the_fronts_share_one_upstream_record_without_duplicates(world):
    """Sanity of the matrix itself: every upstream call recorded once, none for hidden targets."""
    calls = [r for r in read_records(world["record"]) if r.get("method") == "tools/call"]
    assert calls and len({(r["id"], r.get("name")) for r in calls}) >= 1
    assert all(json.dumps(r.get("arguments", {})) != '{"topic": "secret"}' for r in calls)
