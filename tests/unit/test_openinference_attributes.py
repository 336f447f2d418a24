"""OpenInference LLM / EMBEDDING / TOOL span attributes (mcp_gateway.telemetry.openinference).

Golden spans: tests/fixtures/openinference-golden/<name>.json is the span the official
openinference-instrumentation-openai produced for the cassette tests/fixtures/providers/openai/<name>.yaml. Both
come from envoyproxy/ai-gateway at commit c217da8a (Apache-2.0; see tests/fixtures/README.md). For every chat-*,
azure-chat-* and embeddings-* golden we build the attributes from the cassette's request body and response body
(streams: the SSE chunks folded by llm_bridge.assemble.StreamAssembler; error responses: `response=None` with
`error=`) and require the same key set and the same values, with these exceptions, each made exact:

- `input.value`, `output.value`, `llm.invocation_parameters`, `embedding.invocation_parameters`,
  `llm.tools.{i}.tool.json_schema` are compared as parsed JSON. Their text is the Python SDK's own serialisation:
  `json.dumps` of the SDK call's keyword arguments (Python argument order, ", " separators, ASCII escapes) for
  the request side; pydantic `model_dump_json` (model field order) for a completion; `json.dumps` of the SDK
  chunk models' `model_dump` (field order) for an assembled stream. We serialise the dicts as they crossed the
  wire, once, with orjson. The JSON values are identical.
- `llm.provider` is in our spans and not in the golden ones: the recorded instrumentation version predates the
  attribute. The current one (openinference-instrumentation-openai 0.1.54) infers it from the client's host, so
  azure-chat-basic (an *.azure.com host) is expected with `llm.provider=azure` while `llm.system` stays `openai`,
  as in its golden span.
- `llm.system` on EMBEDDING spans: the current instrumentation sets it on every span it starts, embeddings
  included; the recorded version set it on LLM spans only.
- `output.value` of a stream: the golden keeps `"object": "chat.completion.chunk"` on the assembled answer; ours
  says `chat.completion`, since what a reader sees there is the whole answer (otherwise identical).

Error goldens (chat-bad-request, chat-unknown-model, chat-no-messages, embeddings-bad-request,
embeddings-unknown-model) hold only the request-side attributes; the failure is in the span status and an
`exception` event, which are not attributes, so `error=` adds nothing and a non-completion response is ignored.

Skipped goldens: audio-transcription-basic and audio-translation-basic (audio API, multipart request bodies),
image-generation-basic (images API) and completion-* (legacy completions API, `llm.prompts`/`llm.choices`): these
builders cover Chat Completions and embeddings, the gateway's canonical model.

Hiding is checked against an independent model of `TraceConfig.mask` (spec/configuration.md, the §1.3 table of
the observability reference): applied key by key to the unhidden attributes, it must give exactly what the
builders produce with the flag set.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_bridge.assemble import StreamAssembler
from mcp_gateway.telemetry.openinference import (
    REDACTED_VALUE,
    Recording,
    embedding_attributes,
    llm_attributes,
    tool_attributes,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = FIXTURES / "openinference-golden"
JSON_VALUED = ("input.value", "output.value", "llm.invocation_parameters", "embedding.invocation_parameters")
NAMES = sorted(p.stem for p in GOLDEN.glob("*.json") if p.stem.startswith(("chat-", "azure-chat-", "embeddings-")))
R = REDACTED_VALUE


def _otlp_value(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    if kind == "intValue":
        return int(raw)  # OTLP/JSON writes 64-bit ints as strings
    if kind == "arrayValue":
        return [_otlp_value(v) for v in raw.get("values", [])]
    return raw


def _golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _exchange(name: str) -> tuple[dict[str, Any], dict[str, Any] | None, BaseException | None]:
    """(request, response, error) for a cassette, as the gateway would hold them."""
    cassette = yaml.safe_load((FIXTURES / "providers" / "openai" / f"{name}.yaml").read_text())
    interaction = cassette["interactions"][0]
    request = json.loads(interaction["request"]["body"])
    body, code = interaction["response"]["body"], interaction["response"]["code"]
    if code >= 400:
        return request, None, RuntimeError(f"{code}: {body}")
    if not request.get("stream"):
        return request, json.loads(body), None
    assembler = StreamAssembler()
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            assembler.add(json.loads(line[6:]))
    return request, assembler.result(), None


def _ours(name: str, recording: Recording | None = None) -> dict[str, Any]:
    request, response, error = _exchange(name)
    provider = "azure" if name.startswith("azure-") else "openai"
    recording = recording or Recording()
    if name.startswith("embeddings-"):
        return embedding_attributes(request, response, system="openai", provider=provider, recording=recording)
    return llm_attributes(request, response, system="openai", provider=provider, recording=recording, error=error)


def _comparable(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        k: json.loads(v) if k in JSON_VALUED or k.endswith(".tool.json_schema") else v for k, v in attributes.items()
    }


@pytest.mark.parametrize("name", NAMES)
def test_attributes_equal_the_official_instrumentations_golden_span(name: str) -> None:
    expected = {a["key"]: _otlp_value(a["value"]) for a in _golden(name)["attributes"]}
    expected["llm.provider"] = "azure" if name.startswith("azure-") else "openai"  # see the module docstring
    if name.startswith("embeddings-"):
        assert "llm.system" not in expected
        expected["llm.system"] = "openai"
    comparable = _comparable(expected)
    output = comparable.get("output.value")
    if isinstance(output, dict) and output.get("object") == "chat.completion.chunk":
        comparable["output.value"] = {**output, "object": "chat.completion"}  # see the module docstring
    assert _comparable(_ours(name)) == comparable


def test_the_goldens_covered_are_all_chat_and_embeddings_ones() -> None:
    assert len(NAMES) == 31
    skipped = {p.stem for p in GOLDEN.glob("*.json")} - set(NAMES)
    assert all(n.startswith(("audio-", "image-", "completion-")) for n in skipped)


@pytest.mark.parametrize("name", ["chat-bad-request", "chat-unknown-model", "chat-no-messages"])
def test_errors_record_request_attributes_only_and_ignore_an_error_body(name: str) -> None:
    golden = _golden(name)
    assert golden["status"]["code"] == "STATUS_CODE_ERROR" and golden["events"][0]["name"] == "exception"
    request, _, error = _exchange(name)
    error_body = {"error": {"message": "bad", "type": "invalid_request_error"}}
    args: dict[str, Any] = {"system": "openai", "provider": "openai", "recording": Recording(), "error": error}
    with_body = llm_attributes(request, error_body, **args)
    assert with_body == llm_attributes(request, None, **args)
    assert not any(
        k.startswith(("output.", "llm.output_messages", "llm.model_name", "llm.token_count")) for k in with_body
    )


def test_a_failed_stream_still_records_what_was_assembled() -> None:
    request, response, _ = _exchange("chat-streaming")
    attributes = llm_attributes(
        request, response, system="openai", provider="openai", recording=Recording(), error=OSError("reset")
    )
    assert attributes["llm.output_messages.0.message.content"].startswith("Hi there!")


@pytest.mark.parametrize(
    "name", ["chat-image-to-text", "chat-parallel-tools", "embeddings-mixed-batch", "chat-streaming-detailed-usage"]
)
def test_every_attribute_is_a_valid_otel_value(name: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=10_000))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = _ours(name)
    provider.get_tracer("test").start_span("s", attributes=attributes).end()
    recorded = dict(exporter.get_finished_spans()[0].attributes or {})
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in recorded.items()} == attributes  # nothing dropped


def test_system_and_provider_are_lower_cased_and_cache_writes_counted() -> None:
    response = {
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 6}},
    }
    attributes = llm_attributes(
        {"model": "m", "messages": []}, response, system="OpenAI", provider="Azure", recording=Recording()
    )
    assert (attributes["llm.system"], attributes["llm.provider"]) == ("openai", "azure")
    assert attributes["llm.token_count.prompt_details.cache_read"] == 4
    assert attributes["llm.token_count.prompt_details.cache_write"] == 6


# --- hiding -------------------------------------------------------------------------------------------------------

DATA_IMAGE = "data:image/png;base64," + "A" * 40
HTTP_IMAGE = "https://example.com/" + "x" * 60
REQUEST: dict[str, Any] = {
    "model": "gpt-x",
    "temperature": 0.2,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": DATA_IMAGE}},
                {"type": "image_url", "image_url": {"url": HTTP_IMAGE, "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"q":1}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "look", "content": "a cat"},
    ],
    "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
}
RESPONSE: dict[str, Any] = {
    "id": "r1",
    "object": "chat.completion",
    "model": "gpt-x-1",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {"id": "call_2", "type": "function", "function": {"name": "look", "arguments": '{"q":2}'}}
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "completion_tokens_details": {"reasoning_tokens": 3},
    },
}
EMBEDDING_REQUEST: dict[str, Any] = {"model": "e", "input": ["a", "b"], "encoding_format": "float"}
EMBEDDING_RESPONSE: dict[str, Any] = {
    "object": "list",
    "model": "e-1",
    "data": [{"index": 0, "embedding": [0.5, -1.0]}, {"index": 1, "embedding": [0.25, 0]}],
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}
_DROP = object()


def _mask(key: str, value: Any, rec: Recording) -> Any:
    """An independent model of TraceConfig.mask's precedence (first match wins), key by key."""
    inputs, outputs = "llm.input_messages" in key, "llm.output_messages" in key
    text = "message.content" in key and "message.contents" not in key
    if rec.hide_llm_invocation_parameters and key == "llm.invocation_parameters":
        return _DROP
    if (rec.hide_inputs or rec.hide_llm_tools) and "llm.tools" in key:
        return _DROP
    if key in ("input.value", "output.value") and (rec.hide_inputs if key == "input.value" else rec.hide_outputs):
        return R
    if (key == "input.mime_type" and rec.hide_inputs) or (key == "output.mime_type" and rec.hide_outputs):
        return _DROP
    if (inputs and (rec.hide_inputs or rec.hide_input_messages)) or (
        outputs and (rec.hide_outputs or rec.hide_output_messages)
    ):
        return _DROP
    if ((inputs and rec.hide_input_text) or (outputs and rec.hide_output_text)) and (
        text or "message_content.text" in key
    ):
        return R
    if inputs and rec.hide_input_images and "message_content.image" in key:
        return _DROP
    if (inputs or outputs) and key.endswith("message_content.image.image.url"):
        return (
            R
            if value.startswith("data:image/") and "base64" in value and len(value) > rec.base64_image_max_length
            else value
        )
    if rec.hide_embedding_vectors and key.startswith("embedding.embeddings.") and key.endswith(".embedding.vector"):
        return R
    if rec.hide_embeddings_text and key.startswith("embedding.embeddings.") and key.endswith(".embedding.text"):
        return R
    return value


def _masked(attributes: dict[str, Any], rec: Recording) -> dict[str, Any]:
    out = {k: _mask(k, v, rec) for k, v in attributes.items()}
    return {k: v for k, v in out.items() if v is not _DROP}


FLAGS = [f for f in Recording.__dataclass_fields__ if f.startswith("hide_")]
RECORDINGS = [
    *(Recording(**{flag: True}) for flag in FLAGS),
    Recording(base64_image_max_length=10),
    Recording(hide_input_text=True, hide_input_images=True, base64_image_max_length=10),
    Recording(hide_inputs=True, hide_input_text=True, hide_llm_tools=True),
    Recording(hide_outputs=True, hide_output_text=True),
    Recording(hide_output_messages=True, hide_input_messages=True, hide_llm_invocation_parameters=True),
    Recording(**dict.fromkeys(FLAGS, True)),
]


def _llm(rec: Recording) -> dict[str, Any]:
    return llm_attributes(REQUEST, RESPONSE, system="openai", provider="openai", recording=rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=repr)
def test_llm_hiding_matches_the_trace_config_mask(rec: Recording) -> None:
    ours = _llm(rec)
    expected = _masked(_llm(Recording()), rec)
    ours_input, expected_input = ours.pop("input.value"), expected.pop("input.value")
    assert ours == expected
    if rec.hide_inputs:
        assert ours_input == R
    else:  # images hidden from the attributes are hidden from input.value too
        messages = json.loads(ours_input)["messages"]
        urls = [part["image_url"]["url"] for part in messages[1]["content"][1:]]
        data_hidden = rec.hide_input_images or rec.base64_image_max_length < len(DATA_IMAGE)
        assert urls == [R if data_hidden else DATA_IMAGE, R if rec.hide_input_images else HTTP_IMAGE]
        assert json.loads(expected_input)["messages"][1]["content"][2]["image_url"]["detail"] == "low"


def test_the_unhidden_llm_attributes() -> None:
    attributes = _llm(Recording())
    assert {k: v for k, v in attributes.items() if k.startswith("llm.input_messages.1.")} == {
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is this?",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": DATA_IMAGE,
        "llm.input_messages.1.message.contents.2.message_content.type": "image",
        "llm.input_messages.1.message.contents.2.message_content.image.image.url": HTTP_IMAGE,
    }
    assert attributes["llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments"] == '{"q":1}'
    assert attributes["llm.input_messages.3.message.tool_call_id"] == "call_1"
    assert attributes["llm.input_messages.3.message.name"] == "look"
    assert attributes["llm.output_messages.0.message.tool_calls.0.tool_call.id"] == "call_2"
    assert json.loads(attributes["llm.invocation_parameters"]) == {"model": "gpt-x", "temperature": 0.2}
    assert attributes["llm.token_count.completion_details.reasoning"] == 3


def test_hide_input_text_keeps_roles_and_part_types() -> None:
    attributes = _llm(Recording(hide_input_text=True, hide_input_images=True))
    assert attributes["llm.input_messages.0.message.role"] == "system"
    assert attributes["llm.input_messages.0.message.content"] == R
    assert attributes["llm.input_messages.1.message.contents.0.message_content.text"] == R
    assert attributes["llm.input_messages.1.message.contents.1.message_content.type"] == "image"
    assert not any("image.url" in k for k in attributes)


def test_base64_images_over_the_limit_are_redacted_but_urls_are_not() -> None:
    attributes = _llm(Recording(base64_image_max_length=len(DATA_IMAGE) - 1))
    assert attributes["llm.input_messages.1.message.contents.1.message_content.image.image.url"] == R
    assert attributes["llm.input_messages.1.message.contents.2.message_content.image.image.url"] == HTTP_IMAGE
    assert (
        _llm(Recording(base64_image_max_length=len(DATA_IMAGE)))[
            "llm.input_messages.1.message.contents.1.message_content.image.image.url"
        ]
        == DATA_IMAGE
    )
    assert REQUEST["messages"][1]["content"][1]["image_url"]["url"] == DATA_IMAGE  # the request is never mutated


def _embedding(rec: Recording) -> dict[str, Any]:
    return embedding_attributes(
        EMBEDDING_REQUEST, EMBEDDING_RESPONSE, system="openai", provider="openai", recording=rec
    )


@pytest.mark.parametrize("rec", RECORDINGS, ids=repr)
def test_embedding_hiding_matches_the_trace_config_mask(rec: Recording) -> None:
    assert _embedding(rec) == _masked(_embedding(Recording()), rec)


def test_embedding_vectors_and_texts() -> None:
    attributes = _embedding(Recording())
    assert attributes["embedding.embeddings.1.embedding.vector"] == [
        0.25,
        0.0,
    ]  # ints made floats: OTel arrays are homogeneous
    assert attributes["embedding.embeddings.0.embedding.text"] == "a"
    hidden = _embedding(Recording(hide_embedding_vectors=True, hide_embeddings_text=True))
    assert hidden["embedding.embeddings.0.embedding.vector"] == R  # the string, as TraceConfig does since 0.1.4x
    assert hidden["embedding.embeddings.1.embedding.text"] == R
    assert hidden["embedding.model_name"] == "e-1" and hidden["llm.token_count.prompt"] == 2


# --- Recording: environment and overrides ---------------------------------------------------------------------


def test_from_env_defaults_and_documented_variable_names() -> None:
    assert Recording.from_env({}) == Recording()
    for flag in FLAGS:
        if flag != "hide_embedding_vectors":
            assert getattr(Recording.from_env({f"OPENINFERENCE_{flag.upper()}": "true"}), flag) is True
    env = {
        "OPENINFERENCE_HIDE_INPUTS": "TRUE",
        "OPENINFERENCE_HIDE_OUTPUTS": "False",
        "OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH": "100",
    }
    assert Recording.from_env(env) == Recording(hide_inputs=True, base64_image_max_length=100)


def test_from_env_reads_both_embedding_vector_variables() -> None:
    assert Recording.from_env({"OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS": "true"}).hide_embedding_vectors
    assert Recording.from_env(
        {"OPENINFERENCE_HIDE_EMBEDDING_VECTORS": "true"}
    ).hide_embedding_vectors  # deprecated name
    assert not Recording.from_env({"OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS": "false"}).hide_embedding_vectors


def test_from_env_rejects_what_trace_config_rejects(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        recording = Recording.from_env(
            {"OPENINFERENCE_HIDE_INPUTS": "1", "OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH": "lots"}
        )
    assert recording == Recording()  # "1" is not a bool to TraceConfig: the default stays
    assert "OPENINFERENCE_HIDE_INPUTS" in caplog.text and "OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH" in caplog.text


def test_overridden_applies_per_tenant_settings() -> None:
    base = Recording(hide_outputs=True)
    assert base.overridden({"hide_inputs": True, "hide_outputs": None}) == Recording(
        hide_inputs=True, hide_outputs=True
    )
    assert base.overridden({"hide_outputs": False, "base64_image_max_length": 5}) == Recording(
        base64_image_max_length=5
    )
    assert base.overridden({"hide_embeddings_vectors": True}).hide_embedding_vectors  # TraceConfig's current name
    assert base.overridden({}) is base
    with pytest.raises(ValueError, match="hide_input"):
        base.overridden({"hide_input": True})
    with pytest.raises(TypeError):
        base.overridden({"hide_inputs": "true"})
    with pytest.raises(TypeError):
        base.overridden({"base64_image_max_length": True})


# --- TOOL spans ---------------------------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_tool_attributes() -> None:
    result = {"content": [{"type": "text", "text": "18C"}], "isError": False}
    attributes = tool_attributes(
        name="weather",
        description="Weather now",
        parameters=SCHEMA,
        arguments={"city": "Paris"},
        result=result,
        recording=Recording(),
    )
    assert _comparable(attributes) | {"tool.parameters": json.loads(attributes["tool.parameters"])} == {
        "openinference.span.kind": "TOOL",
        "tool.name": "weather",
        "tool.description": "Weather now",
        "tool.parameters": SCHEMA,
        "input.value": {"city": "Paris"},
        "input.mime_type": "application/json",
        "output.value": result,
        "output.mime_type": "application/json",
    }


def test_tool_attributes_plain_values_and_absences() -> None:
    attributes = tool_attributes(
        name="t", description=None, parameters='{"type":"object"}', arguments=None, result="done", recording=Recording()
    )
    assert attributes == {
        "openinference.span.kind": "TOOL",
        "tool.name": "t",
        "tool.parameters": '{"type":"object"}',
        "output.value": "done",
        "output.mime_type": "text/plain",
    }


def test_tool_attributes_hidden() -> None:
    attributes = tool_attributes(
        name="t",
        description="d",
        parameters=SCHEMA,
        arguments={"secret": 1},
        result=[1, 2],
        recording=Recording(hide_inputs=True, hide_outputs=True),
    )
    assert attributes["input.value"] == R and attributes["output.value"] == R
    assert "input.mime_type" not in attributes and "output.mime_type" not in attributes
    assert json.loads(attributes["tool.parameters"]) == SCHEMA  # the schema is not an input
