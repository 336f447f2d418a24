"""The gateway's spans on the wire: the real OTLP exporters (HTTP/protobuf and gRPC) behind `Tracing`, sending to
a real OTLP receiver on 127.0.0.1 (tests/support/otlp_receiver.py), which decodes them with opentelemetry-proto.
What arrives must be what the conventions ask for: the client's trace id, the right parents, typed attributes,
the resource that picks the Phoenix project."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llm_bridge.exchange import Exchange
from llm_bridge.usage import Usage
from mcp_gateway.auth.principal import Principal
from mcp_gateway.telemetry.openinference import Recording
from mcp_gateway.telemetry.tracing import Tracing, TracingSettings
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import Proc

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
META = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
TOOL = {"name": "get_weather", "description": "Weather", "inputSchema": {"type": "object"}}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(grpc_port=0) as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def _fresh(receiver: OtlpReceiver) -> None:
    receiver.clear()


def _exchange() -> Exchange:
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "18 C"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    return Exchange(
        operation="chat",
        front="openai",
        original_model="gpt-4o-mini",
        stream=True,
        request={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Weather in Paris?"}]},
        caller=Principal(tenant="acme", subject="alice"),
        headers={b"agent-session-id": b"sess-1"},
        request_model="gpt-4o-mini",
        response_model=response["model"],
        backend="openai-main",
        provider="openai",
        response=response,
        usage=Usage.of(response["usage"]),
        started=1_700_000_000.0,
        started_monotonic=50.0,
        first_token=50.2,
        ended=51.0,
    )


def _trace_one_call(tracing: Tracing) -> None:
    """A tools/call from a client that sent its context in `_meta`, during which the gateway asked an LLM."""
    parent = tracing.extract({}, META)
    mcp = tracing.start_mcp(
        "tools/call",
        target="get_weather",
        parent=parent,
        request_id=1,
        session_id=tracing.session_id({}, {"agent-session-id": "sess-1"}),
        protocol_version="2025-11-25",
        transport="http",
        tenant="acme",
        subject="alice",
        upstream="weather",
        tool=TOOL,
        arguments={"city": "Paris"},
        recording=Recording(),
    )
    llm = tracing.start_llm(_exchange(), mcp.context())
    llm.finish(_exchange(), Recording())
    mcp.finish(result={"content": [{"type": "text", "text": "no such city"}], "isError": True}, is_error=True)
    assert tracing.flush(10_000)


def _by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in spans}


def _check_call(spans: dict[str, dict[str, Any]], transport: str) -> None:
    mcp, llm = spans["tools/call get_weather"], spans["chat gpt-4o-mini"]
    assert mcp["trace_id"] == llm["trace_id"] == CLIENT_TRACE
    assert mcp["parent_span_id"] == CLIENT_SPAN
    assert llm["parent_span_id"] == mcp["span_id"]
    assert (mcp["kind"], llm["kind"]) == ("SERVER", "CLIENT")
    assert mcp["status"] == {"code": "ERROR", "message": "no such city"}
    assert mcp["attributes"]["error.type"] == "tool_error"
    assert mcp["attributes"]["openinference.span.kind"] == "TOOL"
    assert mcp["attributes"]["mcp.method.name"] == "tools/call"
    assert mcp["attributes"]["gen_ai.tool.name"] == "get_weather"
    assert mcp["attributes"]["session.id"] == "sess-1"
    assert llm["attributes"]["openinference.span.kind"] == "LLM"
    assert llm["attributes"]["llm.token_count.total"] == 15  # an int on the wire, not a string
    assert llm["attributes"]["gen_ai.usage.input_tokens"] == 12
    assert llm["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert llm["attributes"]["mcp_gateway.tenant"] == "acme"
    assert llm["start_time_unix_nano"] == 1_700_000_000_000_000_000
    assert llm["end_time_unix_nano"] == 1_700_000_001_000_000_000
    assert [(e["name"], e["time_unix_nano"]) for e in llm["events"]] == [
        ("First Token Stream Event", 1_700_000_000_200_000_000)
    ]
    for span in (mcp, llm):
        assert span["resource"]["service.name"] == "gw-wire"
        assert span["resource"]["openinference.project.name"] == "wire-tests"
        assert span["scope"] == "mcp_gateway"
        assert span["transport"] == transport


@pytest.mark.parametrize(("exporter", "transport"), [("otlp-http", "http/protobuf"), ("otlp-grpc", "grpc")])
def test_each_exporter_delivers_the_spans(receiver: OtlpReceiver, exporter: str, transport: str) -> None:
    endpoint = receiver.grpc_endpoint if exporter == "otlp-grpc" else receiver.url
    settings = TracingSettings(exporter=exporter, endpoint=endpoint, service_name="gw-wire", project_name="wire-tests")
    tracing = Tracing(settings)
    try:
        _trace_one_call(tracing)
        _check_call(_by_name(receiver.wait_for_spans(2)), transport)
    finally:
        tracing.shutdown()


def test_the_standard_otel_variables_configure_the_exporter(receiver: OtlpReceiver, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "openinference.project.name=wire-tests")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gw-wire")
    tracing = Tracing(TracingSettings(exporter="otlp"))
    try:
        _trace_one_call(tracing)
        _check_call(_by_name(receiver.wait_for_spans(2)), "http/protobuf")
    finally:
        tracing.shutdown()
    requests = receiver.requests()  # MCP spans (lean path) and LLM spans may go in separate batches
    assert requests
    for request in requests:
        assert request["path"] == "/v1/traces"
        assert request["headers"]["x-api-key"] == "s3cret"
        assert request["headers"]["content-type"] == "application/x-protobuf"


def test_the_receiver_reads_otlp_json_too(receiver: OtlpReceiver) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-client"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": CLIENT_TRACE,
                                "spanId": CLIENT_SPAN,
                                "parentSpanId": "",
                                "name": "agent turn",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [
                                    {"key": "count", "value": {"intValue": "3"}},
                                    {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                                ],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(receiver.traces_url, content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json() == {}
    (span,) = receiver.spans()
    assert (span["trace_id"], span["span_id"], span["parent_span_id"]) == (CLIENT_TRACE, CLIENT_SPAN, "")
    assert (span["kind"], span["status"]) == ("CLIENT", {"code": "ERROR", "message": "boom"})
    assert span["attributes"] == {"count": 3, "tags": ["a"]}
    assert span["transport"] == "http/json"
    assert httpx.post(receiver.traces_url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415


def test_the_receiver_runs_as_a_process_and_serves_what_it_received() -> None:
    proc = Proc([sys.executable, "-m", "tests.support.otlp_receiver", "--port", "0"])
    try:
        port = int(proc.wait_for_line("listening", timeout=30).split("http=")[1].split()[0])
        proc.wait_for_line("ready", timeout=10)
        tracing = Tracing(
            TracingSettings(
                exporter="otlp-http",
                endpoint=f"http://127.0.0.1:{port}",
                service_name="gw-wire",
                project_name="wire-tests",
            )
        )
        try:
            _trace_one_call(tracing)
        finally:
            tracing.shutdown()
        spans = httpx.get(f"http://127.0.0.1:{port}/spans").json()
        _check_call(_by_name(spans), "http/protobuf")
        assert httpx.delete(f"http://127.0.0.1:{port}/spans").status_code == 204
        assert httpx.get(f"http://127.0.0.1:{port}/spans").json() == []
        assert proc.stop() == 0  # SIGTERM is a clean stop
    finally:
        proc.kill()


def test_a_sampled_out_call_propagates_its_context_but_exports_nothing(receiver: OtlpReceiver) -> None:
    tracing = Tracing(TracingSettings(exporter="otlp-http", endpoint=receiver.url, sample_ratio=0.0))
    try:
        span = tracing.start_mcp(
            "tools/call",
            target="get_weather",
            parent=tracing.extract({}, None),
            request_id=1,
            session_id=None,
            protocol_version="2025-11-25",
            transport="tcp",
            tenant="acme",
            subject="alice",
            upstream="weather",
            recording=Recording(),
        )
        version, trace_id, span_id, flags = span.headers()["traceparent"].split("-")
        assert (version, flags) == ("00", "00") and int(trace_id, 16) and int(span_id, 16)
        assert span.meta({"k": 1})["traceparent"] == span.headers()["traceparent"]
        span.finish(result={"content": []})
        assert tracing.flush(10_000)
        time.sleep(0.3)
        assert receiver.spans() == []
    finally:
        tracing.shutdown()


def test_lean_span_headers_equal_what_the_propagator_writes(receiver: OtlpReceiver) -> None:
    from opentelemetry import propagate

    tracing = Tracing(TracingSettings(exporter="otlp-http", endpoint=receiver.url))
    try:
        meta = {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01", "tracestate": "vendor=opaque,other=x"}
        span = tracing.start_mcp(
            "tools/call",
            target="t",
            parent=tracing.extract({}, meta),
            request_id=1,
            session_id=None,
            protocol_version=None,
            transport="tcp",
            tenant="t",
            subject="s",
            upstream="u",
            recording=Recording(),
        )
        expected: dict[str, str] = {}
        propagate.get_global_textmap().inject(expected, context=span.context())
        assert span.headers() == expected and expected["tracestate"] == "vendor=opaque,other=x"
        assert span.headers()["traceparent"].startswith(f"00-{'ab' * 16}-")
        span.finish()
    finally:
        tracing.shutdown()
