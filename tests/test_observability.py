"""Traces, metrics and the access log of a real gateway, read from a real OTLP receiver and `/metrics`.

- One trace from an instrumented client through the gateway into an upstream `mcp` SDK server (which emits
  its own spans): one trace id, each span the child of the one before.
- The gateway's TOOL span carries the OpenInference and OTel MCP attributes; tool errors are `tool_error`.
- LLM completions are LLM spans whose context reaches the backend request.
- Per-tenant recording controls (policy `recording:`) hide inputs and outputs.
- `/metrics` parses with prometheus_client and carries the semconv histograms, with one worker and two.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from mcp import MCPError
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import connect, text_of
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import Gateway, llm_server
from tests.support.wire import modern_post

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def replay() -> Iterator[str]:
    proc, url = llm_server()
    yield url
    proc.kill()


def tracing(receiver: OtlpReceiver) -> dict[str, Any]:
    return {"tracing": {"exporter": "otlp-http", "endpoint": receiver.url, "project_name": "gateway-tests"}}


def spans_named(receiver: OtlpReceiver, prefix: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = [s for s in receiver.spans() if s["name"].startswith(prefix)]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no span named {prefix!r}: {[s['name'] for s in receiver.spans()]}")


def _child_commands(pid: int) -> list[str]:
    """The command lines of a process's direct children (Linux /proc)."""
    commands = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                commands.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return commands


async def test_one_trace_from_the_client_through_the_gateway_into_the_upstream(upstreams, gateway, receiver) -> None:
    _, url = upstreams("--name", "up", "--otlp", receiver.traces_url)
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url}}, "telemetry": tracing(receiver)},
        upstreams_ready=1,
    )
    # The export process is up once the gateway is ready, before the first span: not started under load.
    assert any("mcp_gateway.telemetry.export_process" in line for line in _child_commands(gw.proc.popen.pid))
    client_tracer = TracerProvider().get_tracer("agent")
    with client_tracer.start_as_current_span("agent turn") as root:
        async with connect(gw.url, "legacy") as client:
            result = await client.call_tool("up__tool_1", {"x": 1})
    assert not result.is_error
    root_context = root.get_span_context()
    trace_id = format(root_context.trace_id, "032x")
    [gateway_span] = spans_named(receiver, "tools/call up__tool_1")
    [upstream_span] = spans_named(receiver, "tools/call tool_1")
    assert gateway_span["trace_id"] == trace_id == upstream_span["trace_id"]
    assert gateway_span["parent_span_id"] == format(root_context.span_id, "016x")
    assert upstream_span["parent_span_id"] == gateway_span["span_id"]
    attributes = gateway_span["attributes"]
    assert attributes["openinference.span.kind"] == "TOOL"
    assert attributes["tool.name"] == "up__tool_1"
    assert json.loads(attributes["input.value"]) == {"x": 1}
    assert "tool_1" in attributes["output.value"]
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["gen_ai.tool.name"] == "up__tool_1"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["mcp.session.id"]
    assert attributes["mcp_gateway.upstream"] == "up"
    assert attributes["mcp_gateway.tenant"] == "default"
    assert gateway_span["resource"]["openinference.project.name"] == "gateway-tests"


async def test_tool_errors_and_access_log_trace_ids(upstreams, gateway, receiver, tmp_path) -> None:
    _, url = upstreams("--name", "up")
    log = tmp_path / "access.log"
    gw = gateway(
        {
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
            "telemetry": {**tracing(receiver), "access_log": str(log)},
        },
        upstreams_ready=1,
    )
    async with connect(gw.url, "modern") as client:
        failed = await client.call_tool("up__error", {"message": "boom"})
        await client.list_tools()
        with pytest.raises(MCPError):
            await client.call_tool("nope__missing", {})
    assert failed.is_error
    [unknown] = spans_named(receiver, "tools/call nope__missing")
    assert unknown["attributes"]["error.type"] == "-32602" and unknown["status"]["code"] == "ERROR"
    [span] = spans_named(receiver, "tools/call up__error")
    assert span["attributes"]["error.type"] == "tool_error"
    assert span["status"]["code"] == "ERROR"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (log.exists() and "tools/call" in log.read_text()):
        time.sleep(0.1)
    entry = next(json.loads(line) for line in log.read_text().splitlines() if '"tools/call"' in line)
    assert entry["trace_id"] == span["trace_id"]
    # Protocol plumbing is not traced by default (telemetry.tracing.plumbing), so it does not fill sessions.
    assert not [s for s in receiver.spans() if s["name"] == "tools/list"]


def test_llm_spans_match_the_exchange_and_reach_the_backend(replay, tmp_path, receiver) -> None:
    key = "sk-obs"
    config = {
        "auth": {
            "api_keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": "acme", "subject": "ann"}]
        },
        "telemetry": tracing(receiver),
        "llm": {
            "direct": True,
            "backends": {"replay": {"provider": "openai", "base_url": f"{replay}/v1", "api_key": "sk-backend-secret"}},
        },
    }
    gw = Gateway(config, tmp_path)
    try:
        gw.wait_ready()
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=key, max_retries=0)
        httpx.delete(f"{replay}/_requests")
        client.chat.completions.create(
            model="replay/chat-basic",
            messages=[{"role": "user", "content": "Hello!"}],
            extra_headers={"agent-session-id": "s-42"},
        )
        [span] = spans_named(receiver, "chat ")
        attributes = span["attributes"]
        assert attributes["openinference.span.kind"] == "LLM"
        assert attributes["llm.model_name"] and attributes["llm.input_messages.0.message.content"] == "Hello!"
        assert attributes["llm.token_count.total"] > 0
        assert attributes["session.id"] == "s-42" and attributes["user.id"] == "ann"
        assert attributes["mcp_gateway.backend"] == "replay"
        [seen] = httpx.get(f"{replay}/_requests").json()
        assert seen["headers"]["traceparent"].split("-")[1:3] == [span["trace_id"], span["span_id"]]
        # Neither the caller's key nor the backend's reaches a span.
        exported = json.dumps(receiver.spans())
        assert key not in exported and "sk-backend-secret" not in exported
    finally:
        gw.stop()


async def test_tenant_recording_controls_hide_inputs_and_outputs(upstreams, gateway, receiver, tmp_path) -> None:
    _, url = upstreams("--name", "up")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "all.yaml").write_text(
        yaml.safe_dump({"tenants": ["*"], "default": "allow", "recording": {"hide_inputs": True, "hide_outputs": True}})
    )
    gw = gateway(
        {
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
            "telemetry": tracing(receiver),
            "policies": {"dir": str(policies)},
        },
        upstreams_ready=1,
    )
    async with connect(gw.url, "legacy") as client:
        assert text_of(await client.call_tool("up__tool_1", {"secret": "hunter2"}))
    [span] = spans_named(receiver, "tools/call up__tool_1")
    # OPENINFERENCE_HIDE_* semantics: the values are masked, their mime types dropped.
    assert span["attributes"]["input.value"] == span["attributes"]["output.value"] == "__REDACTED__"
    assert "input.mime_type" not in span["attributes"]
    assert "hunter2" not in json.dumps(span)


def _scrape(port: int) -> dict[str, Any]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def _count(families: dict[str, Any], name: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in families[name].samples
        if sample.name == f"{name}_count" and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_after_a_mixed_workload(upstreams, replay, tmp_path, workers) -> None:
    _, url = upstreams("--name", "up")
    config = {
        "upstreams": {"up": {"transport": "streamable_http", "url": url}},
        "llm": {
            "backends": {"replay": {"provider": "openai", "base_url": f"{replay}/v1"}},
            "models": {"gpt-echo": {"targets": [{"backend": "replay", "model": "echo"}]}},
        },
        "auth": {"allow_anonymous": True},
    }
    gw = Gateway(config, tmp_path, extra_args=("--workers", str(workers)))
    try:
        gw.wait_ready(upstreams_ready=1)
        calls = 12
        for i in range(calls):  # a new connection each time, so both workers take some
            response = modern_post(gw.url, "tools/call", {"name": "up__tool_1", "arguments": {"i": i}})
            assert response.status_code == 200, response.text
            chat = {"model": "gpt-echo", "messages": [{"role": "user", "content": "x"}]}
            assert httpx.post(f"http://127.0.0.1:{gw.port}/v1/chat/completions", json=chat).status_code == 200
        for _ in range(3):  # every scrape, whichever worker answers it, reports the sum over workers
            families = _scrape(gw.port)
            assert (
                _count(
                    families,
                    "mcp_server_operation_duration_seconds",
                    mcp_method_name="tools/call",
                    gen_ai_tool_name="up__tool_1",
                )
                == calls
            )
            assert (
                _count(families, "mcp_client_operation_duration_seconds", mcp_method_name="tools/call", upstream="up")
                == calls
            )
            assert (
                _count(
                    families,
                    "gen_ai_client_operation_duration_seconds",
                    gen_ai_operation_name="chat",
                    gen_ai_request_model="echo",
                )
                == calls
            )
            assert _count(families, "gen_ai_server_request_duration_seconds", gen_ai_provider_name="openai") == calls
        tokens = families["gen_ai_client_token_usage"]
        assert {s.labels["gen_ai_token_type"] for s in tokens.samples} == {"input", "output"}
        buckets = [
            float(s.labels["le"])
            for s in families["mcp_server_operation_duration_seconds"].samples
            if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
        ]
        assert sorted(set(buckets)) == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
    finally:
        gw.stop()


async def test_access_log_as_otlp_log_records(upstreams, gateway, receiver) -> None:
    _, url = upstreams("--name", "up")
    telemetry = {"access_log": "otlp", "tracing": {"exporter": "none", "endpoint": receiver.url}}
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url}}, "telemetry": telemetry}, upstreams_ready=1
    )
    async with connect(gw.url, "modern") as client:
        await client.call_tool("up__tool_1", {"x": 1})
    gw.stop()  # the batch goes out at shutdown at the latest
    records = [r for r in receiver.wait_for_logs(1) if r["attributes"].get("method") == "tools/call"]
    assert records and records[0]["attributes"]["target"] == "up__tool_1"
    assert records[0]["attributes"]["tenant"] == "default" and records[0]["attributes"]["upstream"] == "up"


async def test_stdio_gateway_traces_too(tmp_path, receiver) -> None:
    import sys

    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from tests.support.processes import ROOT, scripted_stdio_args

    config = tmp_path / "g.yaml"
    box = scripted_stdio_args("--name", "box", "--tools", "1", "--no-special-tools")
    config.write_text(yaml.safe_dump({"upstreams": {"box": box}, "telemetry": tracing(receiver)}))
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_gateway", "stdio", "--config", str(config)], cwd=str(ROOT)
    )
    async with Client(params, cache=None, mode="legacy") as client:
        await client.call_tool("box__tool_0", {"a": 1})
    [span] = spans_named(receiver, "tools/call box__tool_0")
    assert span["attributes"]["network.transport"] == "pipe"
    assert span["attributes"]["openinference.span.kind"] == "TOOL"
