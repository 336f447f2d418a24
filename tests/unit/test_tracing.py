"""Tracing (mcp_gateway.telemetry.tracing): the exact span each MCP request and LLM exchange produces.

Spans are read from an InMemorySpanExporter behind a SimpleSpanProcessor, so the attributes compared are the ones
the exporter would put on the wire. The LLM exchange is the recorded OpenAI cassette
tests/fixtures/providers/openai/chat-tools.yaml (envoyproxy/ai-gateway, Apache-2.0; see tests/fixtures/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llm_bridge.errors import BridgeError
from llm_bridge.exchange import Exchange
from llm_bridge.usage import Usage
from mcp_gateway.auth.principal import Principal
from mcp_gateway.telemetry.mcp_span import NOOP_MCP_SPAN
from mcp_gateway.telemetry.openinference import REDACTED_VALUE, Recording, embedding_attributes, llm_attributes
from mcp_gateway.telemetry.tracing import Tracing, TracingSettings
from mcp_gateway.telemetry.tracing_llm import FIRST_TOKEN_EVENT
from mcp_gateway.telemetry.tracing_setup import http_traces_endpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "openai"
HEADER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADER_SPAN = "00f067aa0ba902b7"
META_TRACE = "0af7651916cd43dd8448eb211c80319c"
META_SPAN = "b7ad6b7169203331"
HEADERS = {b"traceparent": f"00-{HEADER_TRACE}-{HEADER_SPAN}-01".encode()}
META = {"traceparent": f"00-{META_TRACE}-{META_SPAN}-01", "tracestate": "rojo=00f067aa0ba902b7"}
TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
RESULT = {"content": [{"type": "text", "text": "18 C, sunny"}], "isError": False}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    tracing = Tracing(TracingSettings(project_name="gw-tests"), processors=[SimpleSpanProcessor(exporter)])
    yield tracing
    tracing.shutdown()


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def _call(tracing: Tracing, method: str = "tools/call", **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "target": "get_weather",
        "parent": tracing.extract({}, None),
        "request_id": 7,
        "session_id": "sess-1",
        "protocol_version": "2025-11-25",
        "transport": "http",
        "tenant": "acme",
        "subject": "alice",
        "upstream": "weather",
        "tool": TOOL,
        "arguments": {"city": "Paris"},
        "recording": Recording(),
    }
    arguments.update(overrides)
    return tracing.start_mcp(method, **arguments)


# -- MCP spans ----------------------------------------------------------------------------------------------------


def test_tools_call_is_a_tool_span_with_the_mcp_and_openinference_attributes(tracing, exporter) -> None:
    _call(tracing, mcp_session_id="mcp-abc").finish(result=RESULT)
    span = _only(exporter)
    assert span.name == "tools/call get_weather"
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        # OTel MCP conventions (docs/gen-ai/mcp.md)
        "mcp.method.name": "tools/call",
        "mcp.session.id": "mcp-abc",
        "mcp.protocol.version": "2025-11-25",
        "jsonrpc.request.id": "7",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.operation.name": "execute_tool",
        "network.transport": "tcp",
        # OpenInference TOOL span
        "openinference.span.kind": "TOOL",
        "tool.name": "get_weather",
        "tool.description": "Current weather for a city",
        "tool.parameters": json.dumps(TOOL["inputSchema"], separators=(",", ":")),
        "input.value": '{"city":"Paris"}',
        "input.mime_type": "application/json",
        "output.value": json.dumps(RESULT, separators=(",", ":")),
        "output.mime_type": "application/json",
        "session.id": "sess-1",
        "user.id": "alice",
        "metadata": '{"tenant":"acme","upstream":"weather"}',  # what Phoenix shows and filters on
        # the gateway's own
        "mcp_gateway.tenant": "acme",
        "mcp_gateway.upstream": "weather",
    }
    assert span.resource.attributes["openinference.project.name"] == "gw-tests"
    assert span.resource.attributes["service.name"] == "mcp-gateway"


def test_a_tool_result_with_is_error_is_a_tool_error(tracing, exporter) -> None:
    result = {"content": [{"type": "text", "text": "city not found"}], "isError": True}
    _call(tracing).finish(result=result, is_error=True)
    span = _only(exporter)
    assert span.attributes["error.type"] == "tool_error"
    assert "rpc.response.status_code" not in span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "city not found"
    assert json.loads(span.attributes["output.value"]) == result


def test_a_jsonrpc_error_records_its_code_and_message(tracing, exporter) -> None:
    _call(tracing).finish(error_code=-32602, error_message="Unknown tool: get_weather")
    span = _only(exporter)
    assert span.attributes["error.type"] == "-32602"
    assert span.attributes["rpc.response.status_code"] == "-32602"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "Unknown tool: get_weather"
    assert "output.value" not in span.attributes


def test_resources_read_is_a_retriever_span_whose_contents_are_documents(tracing, exporter) -> None:
    uri = "file:///notes/today.md"
    result = {
        "contents": [
            {"uri": uri, "mimeType": "text/markdown", "text": "# Today"},
            {"uri": "file:///logo.png", "mimeType": "image/png", "blob": "iVBORw0KGgo="},
        ]
    }
    _call(tracing, "resources/read", target=uri, tool=None, arguments=None).finish(result=result)
    span = _only(exporter)
    attributes = dict(span.attributes)
    assert span.name == "resources/read"  # a URI is not a low-cardinality target
    assert attributes["openinference.span.kind"] == "RETRIEVER"
    assert attributes["mcp.resource.uri"] == uri
    assert attributes["input.value"] == uri
    assert attributes["input.mime_type"] == "text/plain"
    assert attributes["retrieval.documents.0.document.id"] == uri
    assert attributes["retrieval.documents.0.document.content"] == "# Today"
    assert json.loads(attributes["retrieval.documents.0.document.metadata"]) == {"mimeType": "text/markdown"}
    assert attributes["retrieval.documents.1.document.id"] == "file:///logo.png"
    assert "retrieval.documents.1.document.content" not in attributes  # no binaries in traces
    assert json.loads(attributes["retrieval.documents.1.document.metadata"]) == {"mimeType": "image/png", "blob": True}
    assert "gen_ai.tool.name" not in attributes and "gen_ai.operation.name" not in attributes


def test_prompts_get_is_a_chain_span_named_after_the_prompt(tracing, exporter) -> None:
    result = {"messages": [{"role": "user", "content": {"type": "text", "text": "Hi Ann"}}]}
    _call(tracing, "prompts/get", target="greet", tool=None, arguments={"name": "Ann"}).finish(result=result)
    span = _only(exporter)
    assert span.name == "prompts/get greet"
    assert span.attributes["openinference.span.kind"] == "CHAIN"
    assert span.attributes["gen_ai.prompt.name"] == "greet"
    assert span.attributes["input.value"] == '{"name":"Ann"}'
    assert json.loads(span.attributes["output.value"]) == result
    assert "gen_ai.tool.name" not in span.attributes


def test_other_methods_are_chain_spans_named_by_the_method(tracing, exporter) -> None:
    _call(tracing, "tools/list", target=None, tool=None, arguments=None, transport="stdio").finish(result={"tools": []})
    span = _only(exporter)
    assert span.name == "tools/list"
    assert span.attributes["openinference.span.kind"] == "CHAIN"
    assert span.attributes["network.transport"] == "pipe"
    assert "input.value" not in span.attributes


def test_hidden_inputs_and_outputs_are_redacted_and_keep_no_mime_type(tracing, exporter) -> None:
    recording = Recording(hide_inputs=True, hide_outputs=True)
    result = {"content": [{"type": "text", "text": "secret failure detail"}], "isError": True}
    _call(tracing, recording=recording).finish(result=result, is_error=True)
    span = _only(exporter)
    assert span.attributes["input.value"] == REDACTED_VALUE
    assert span.attributes["output.value"] == REDACTED_VALUE
    assert "input.mime_type" not in span.attributes and "output.mime_type" not in span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert not span.status.description  # the result's text is an output too
    assert span.attributes["tool.parameters"]  # the schema is the tool's, not the caller's input


def test_hidden_outputs_redact_retrieved_documents(tracing, exporter) -> None:
    result = {"contents": [{"uri": "file:///a", "mimeType": "text/plain", "text": "private"}]}
    recording = Recording(hide_outputs=True)
    _call(tracing, "resources/read", target="file:///a", tool=None, recording=recording).finish(result=result)
    attributes = dict(_only(exporter).attributes)
    assert attributes["retrieval.documents.0.document.id"] == "file:///a"
    assert attributes["retrieval.documents.0.document.content"] == REDACTED_VALUE
    assert attributes["retrieval.documents.0.document.metadata"] == REDACTED_VALUE


# -- session and user ---------------------------------------------------------------------------------------------


def test_session_id_comes_from_the_configured_header_first(tracing) -> None:
    headers = {b"agent-session-id": b"from-header"}
    assert tracing.session_id(headers, {"agent-session-id": "from-meta"}) == "from-header"


@pytest.mark.parametrize("key", ["agent-session-id", "Agent-Session-Id", "goose-session-id", "GOOSE-SESSION-ID"])
def test_session_id_falls_back_to_gooses_meta_key_in_any_case(tracing, key: str) -> None:
    assert tracing.session_id({}, {key: "goose-1", "other": 1}) == "goose-1"


def test_session_id_header_is_configurable(exporter) -> None:
    tracing = Tracing(TracingSettings(session_header="X-Session"), processors=[SimpleSpanProcessor(exporter)])
    assert tracing.session_id({b"x-session": b"s-9"}, None) == "s-9"
    assert tracing.session_id({}, {"x-session": "s-10"}) == "s-10"
    assert tracing.session_id({}, {"agent-session-id": "goose"}) == "goose"  # Goose's key still counts
    assert tracing.session_id({b"agent-session-id": b"not-configured"}, None) is None


def test_no_session_and_no_subject_record_neither(tracing, exporter) -> None:
    _call(tracing, session_id=None, subject="", tenant="").finish()
    attributes = _only(exporter).attributes
    assert "session.id" not in attributes and "user.id" not in attributes and "mcp_gateway.tenant" not in attributes


# -- trace context ------------------------------------------------------------------------------------------------


def test_the_parent_comes_from_the_http_headers(tracing, exporter) -> None:
    _call(tracing, parent=tracing.extract(HEADERS, None)).finish()
    span = _only(exporter)
    assert format(span.context.trace_id, "032x") == HEADER_TRACE
    assert format(span.parent.span_id, "016x") == HEADER_SPAN
    assert span.parent.is_remote
    assert span.links == ()


def test_the_meta_context_wins_and_the_http_one_becomes_a_link(tracing, exporter) -> None:
    _call(tracing, parent=tracing.extract(HEADERS, META)).finish()
    span = _only(exporter)
    assert format(span.context.trace_id, "032x") == META_TRACE
    assert format(span.parent.span_id, "016x") == META_SPAN
    assert span.context.trace_state.get("rojo") == "00f067aa0ba902b7"
    (link,) = span.links
    assert format(link.context.trace_id, "032x") == HEADER_TRACE
    assert format(link.context.span_id, "016x") == HEADER_SPAN


def test_a_meta_without_valid_context_falls_back_to_the_headers(tracing, exporter) -> None:
    _call(tracing, parent=tracing.extract(HEADERS, {"traceparent": "garbage", "progressToken": 3})).finish()
    assert format(_only(exporter).parent.span_id, "016x") == HEADER_SPAN


def test_without_any_context_the_span_starts_a_trace(tracing, exporter) -> None:
    _call(tracing, parent=tracing.extract({b"host": b"x"}, {"progressToken": 1})).finish()
    assert _only(exporter).parent is None


def test_headers_and_meta_carry_the_spans_own_context(tracing, exporter) -> None:
    span = _call(tracing, parent=tracing.extract(HEADERS, META))
    headers = span.headers()
    meta_in = {"progressToken": 5, "traceparent": META["traceparent"], "agent-session-id": "s"}
    meta_out = span.meta(meta_in)
    span.finish()
    own = _only(exporter).context
    expected = f"00-{own.trace_id:032x}-{own.span_id:016x}-01"
    assert headers["traceparent"] == expected
    assert headers["tracestate"] == "rojo=00f067aa0ba902b7"
    assert meta_out == {
        "progressToken": 5,
        "agent-session-id": "s",
        "traceparent": expected,
        "tracestate": "rojo=00f067aa0ba902b7",
    }
    assert meta_in["traceparent"] == META["traceparent"]  # a copy: the client's message is untouched
    assert span.meta(None) == {"traceparent": expected, "tracestate": "rojo=00f067aa0ba902b7"}


def test_a_sampled_out_span_records_nothing_but_still_propagates(exporter) -> None:
    tracing = Tracing(TracingSettings(sample_ratio=0.0), processors=[SimpleSpanProcessor(exporter)])
    span = _call(tracing)
    flags = int(span.headers()["traceparent"].rsplit("-", 1)[1], 16)
    assert flags & 0x01 == 0  # not sampled; the upstream can still join the trace
    span.finish(result=RESULT)
    assert exporter.get_finished_spans() == ()


# -- disabled -----------------------------------------------------------------------------------------------------


def test_a_tracing_that_exports_nowhere_is_a_no_op() -> None:
    tracing = Tracing(TracingSettings())
    assert not tracing.enabled
    parent = tracing.extract(HEADERS, META)
    assert dict(parent) == {}
    assert tracing.session_id({b"agent-session-id": b"s"}, None) is None
    span = _call(tracing, parent=parent)
    assert span is NOOP_MCP_SPAN
    assert span.headers() == {}
    assert span.meta({"a": 1}) == {"a": 1}
    span.finish(result=RESULT, is_error=True)
    tracing.record_llm(exchange=None, recording=Recording(), start_time_ns=0, end_time_ns=1, parent=parent)
    assert tracing.start_llm(None, parent).headers() == {}
    tracing.shutdown()


def test_otel_sdk_disabled_turns_tracing_off(monkeypatch, exporter) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not Tracing(TracingSettings(exporter="console"), processors=[SimpleSpanProcessor(exporter)]).enabled


# -- settings -----------------------------------------------------------------------------------------------------


def test_service_name_comes_from_otel_service_name_unless_configured(monkeypatch, exporter) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-gw")
    for settings, expected in ((TracingSettings(), "edge-gw"), (TracingSettings(service_name="mine"), "mine")):
        tracing = Tracing(settings, processors=[SimpleSpanProcessor(exporter)])
        _call(tracing).finish()
        assert exporter.get_finished_spans()[-1].resource.attributes["service.name"] == expected


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown trace exporter"):
        Tracing(TracingSettings(exporter="zipkin"))


def test_an_http_endpoint_without_a_path_gets_the_traces_path() -> None:
    assert http_traces_endpoint("http://127.0.0.1:6006") == "http://127.0.0.1:6006/v1/traces"
    assert http_traces_endpoint("http://127.0.0.1:6006/") == "http://127.0.0.1:6006/v1/traces"
    assert http_traces_endpoint("http://collector/custom/traces") == "http://collector/custom/traces"
    assert http_traces_endpoint(None) is None


# -- LLM spans ----------------------------------------------------------------------------------------------------


def _cassette(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    interaction = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())["interactions"][0]
    return json.loads(interaction["request"]["body"]), json.loads(interaction["response"]["body"])


def _exchange(name: str = "chat-tools", **overrides: Any) -> Exchange:
    request, response = _cassette(name)
    fields: dict[str, Any] = {
        "operation": "chat",
        "front": "openai",
        "original_model": "fast",  # the alias the client asked for
        "stream": False,
        "request": request,
        "caller": Principal(tenant="acme", subject="alice"),
        "headers": {b"agent-session-id": b"sess-llm"},
        "request_model": request["model"],
        "response_model": response["model"],
        "backend": "openai-main",
        "provider": "openai",
        "response": response,
        "usage": Usage.of(response["usage"]),
        "cost": 0.00012,
        "started": 1_700_000_000.0,
        "started_monotonic": 100.0,
        "first_token": 100.25,
        "ended": 102.0,
    }
    fields.update(overrides)
    return Exchange(**fields)


def test_an_exchange_becomes_an_llm_span_with_its_times(tracing, exporter) -> None:
    exchange = _exchange()
    start, end = 1_700_000_000_000_000_000, 1_700_000_002_000_000_000
    parent = tracing.extract(HEADERS, None)
    tracing.record_llm(exchange=exchange, recording=Recording(), start_time_ns=start, end_time_ns=end, parent=parent)
    span = _only(exporter)
    attributes = dict(span.attributes)
    assert span.name == "chat gpt-5-nano"
    assert span.kind is SpanKind.CLIENT
    assert (span.start_time, span.end_time) == (start, end)
    assert format(span.parent.span_id, "016x") == HEADER_SPAN
    assert span.status.status_code is StatusCode.UNSET
    # Every OpenInference attribute of the builder, unchanged (flattened messages and tools included).
    expected = llm_attributes(
        exchange.request, exchange.response, system="openai", provider="openai", recording=Recording()
    )
    assert {key: attributes[key] for key in expected} == expected
    assert attributes["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_current_weather"
    assert attributes["llm.token_count.prompt"] == 162
    assert attributes["llm.token_count.completion_details.reasoning"] == 256
    assert {key: attributes[key] for key in attributes if key not in expected} == {
        "llm.request.model_name": "fast",
        "llm.response.model_name": "gpt-5-nano-2025-08-07",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-5-nano",
        "gen_ai.response.model": "gpt-5-nano-2025-08-07",
        "gen_ai.response.id": "chatcmpl-C4GmWI2Sl7HnrQsKorSAZkJy94dpT",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 162,
        "gen_ai.usage.output_tokens": 287,
        "gen_ai.usage.reasoning.output_tokens": 256,
        "llm.cost.total": 0.00012,
        "llm.finish_reason": "tool_calls",
        "http.response.status_code": 200,
        "session.id": "sess-llm",
        "user.id": "alice",
        "metadata": '{"tenant":"acme","backend":"openai-main"}',
        "mcp_gateway.tenant": "acme",
        "mcp_gateway.backend": "openai-main",
    }
    (event,) = span.events
    assert event.name == FIRST_TOKEN_EVENT
    assert event.timestamp == start + 250_000_000


def test_a_live_llm_span_hands_its_context_to_the_backend_request(tracing, exporter) -> None:
    exchange = _exchange(first_token=None)
    span = tracing.start_llm(exchange, tracing.extract({}, None))
    headers = span.headers()
    span.finish(exchange, Recording())
    recorded = _only(exporter)
    own = recorded.context
    assert headers["traceparent"] == f"00-{own.trace_id:032x}-{own.span_id:016x}-{own.trace_flags:02x}"
    assert recorded.start_time == 1_700_000_000_000_000_000
    assert recorded.end_time - recorded.start_time == 2_000_000_000  # the exchange's monotonic duration
    assert recorded.events == ()


def test_a_failed_exchange_is_an_error_span(tracing, exporter) -> None:
    error = BridgeError(429, "Rate limit reached for gpt-5-nano", backend="openai-main")
    exchange = _exchange(
        response=None,
        response_model=None,
        usage=None,
        cost=None,
        status=429,
        error=error,
        first_token=None,
        attempts=[("openai-main", "429 rate_limit_error")],
    )
    tracing.record_llm(
        exchange=exchange, recording=Recording(), start_time_ns=10, end_time_ns=20, parent=tracing.extract({}, None)
    )
    span = _only(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "Rate limit reached for gpt-5-nano"
    assert span.attributes["error.type"] == "rate_limit_error"
    assert span.attributes["http.response.status_code"] == 429
    assert span.attributes["mcp_gateway.llm.attempts"] == ("openai-main:429 rate_limit_error",)
    assert span.attributes["llm.model_name"] == "gpt-5-nano"  # no answer: the model asked for
    assert "output.value" not in span.attributes
    assert [event.name for event in span.events] == ["exception"]


def test_an_embeddings_exchange_is_an_embedding_span(tracing, exporter) -> None:
    request, response = _cassette("embeddings-basic")
    exchange = _exchange(
        "embeddings-basic",
        operation="embeddings",
        original_model=request["model"],
        usage=Usage.of(response["usage"]),
        first_token=None,
    )
    tracing.record_llm(
        exchange=exchange, recording=Recording(), start_time_ns=10, end_time_ns=20, parent=tracing.extract({}, None)
    )
    span = _only(exporter)
    attributes = dict(span.attributes)
    assert span.name == f"embeddings {request['model']}"
    expected = embedding_attributes(request, response, system="openai", provider="openai", recording=Recording())
    expected = {
        key: tuple(value) if isinstance(value, list) else value for key, value in expected.items()
    }  # as the SDK keeps them
    assert {key: attributes[key] for key in expected} == expected
    assert attributes["openinference.span.kind"] == "EMBEDDING"
    assert attributes["gen_ai.operation.name"] == "embeddings"
    assert attributes["gen_ai.usage.input_tokens"] == response["usage"]["prompt_tokens"]
    assert "gen_ai.usage.output_tokens" not in attributes
    assert "llm.request.model_name" not in attributes


def test_an_anthropic_front_door_request_is_recorded_in_the_canonical_shape(tracing, exporter) -> None:
    request = {
        "model": "claude-x",
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    exchange = _exchange(
        "chat-basic", operation="messages", front="anthropic", request=request, provider="anthropic", first_token=None
    )
    tracing.record_llm(
        exchange=exchange, recording=Recording(), start_time_ns=10, end_time_ns=20, parent=tracing.extract({}, None)
    )
    attributes = _only(exporter).attributes
    assert attributes["llm.input_messages.0.message.role"] == "system"
    assert attributes["llm.input_messages.0.message.content"] == "Be brief."
    assert attributes["llm.input_messages.1.message.content"] == "Hi"
    assert attributes["llm.provider"] == "anthropic"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.operation.name"] == "chat"


def test_hidden_llm_inputs_and_outputs_follow_the_recording(tracing, exporter) -> None:
    recording = Recording(hide_inputs=True, hide_outputs=True)
    tracing.record_llm(
        exchange=_exchange(), recording=recording, start_time_ns=10, end_time_ns=20, parent=tracing.extract({}, None)
    )
    attributes = _only(exporter).attributes
    assert attributes["input.value"] == REDACTED_VALUE
    assert attributes["output.value"] == REDACTED_VALUE
    assert not any(key.startswith(("llm.input_messages", "llm.output_messages", "llm.tools")) for key in attributes)
    assert attributes["llm.token_count.total"] == 449  # counts are not content
