"""Bedrock Converse / ConverseStream <-> canonical translation.

Fixtures: tests/fixtures/providers/samples (requests/completions, response/bedrock, response/bedrock-titan), from
agentgateway/agentgateway `crates/llm/src/tests` at commit 75b4e6ce, Apache-2.0 (see tests/fixtures/README.md).
There is no recorded ConverseStream sample: streams are built here from the documented event shapes, framed with
encode_message, cut at awkward offsets and decoded again before translation.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llm_bridge.aws.eventstream import EventStreamDecoder, encode_message
from llm_bridge.translate import bedrock
from llm_bridge.translate.bedrock import (
    StreamToChat,
    UnsupportedContent,
    chat_response,
    converse_request,
    error_of,
    titan_embeddings_request,
    titan_embeddings_response,
)

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "samples"
REQUESTS = sorted((SAMPLES / "requests" / "completions").glob("*.json"))
RESPONSES = sorted(p for p in (SAMPLES / "response" / "bedrock").glob("*.json") if p.stem != "rerank")
NEEDS_FETCH = {"image-url", "image-file"}  # https:// and gs:// images: Converse takes bytes or s3:// only
CONTENT_BLOCK_KEYS = {"text", "image", "document", "audio", "toolUse", "toolResult", "reasoningContent"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def sample_request(name: str) -> dict[str, Any]:
    return load(SAMPLES / "requests" / "completions" / f"{name}.json")


def sample_response(name: str) -> dict[str, Any]:
    return load(SAMPLES / "response" / "bedrock" / f"{name}.json")


def assert_valid_converse(body: dict[str, Any]) -> None:
    """The structural rules Converse enforces on a request body."""
    assert "model" not in body and "modelId" not in body
    turns = body["messages"]
    assert turns and turns[0]["role"] == "user"
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2) + ["user"] * (len(turns) % 2)
    open_uses: set[str] = set()
    for turn in turns:
        assert turn["content"], "empty content list"
        results = [b["toolResult"]["toolUseId"] for b in turn["content"] if "toolResult" in b]
        assert set(results) <= open_uses, "toolResult without a toolUse in the turn before"
        open_uses = {b["toolUse"]["toolUseId"] for b in turn["content"] if "toolUse" in b}
        for block in turn["content"]:
            assert len(block) == 1 and set(block) <= CONTENT_BLOCK_KEYS, block
            if "text" in block:
                assert block["text"].strip()
            if "image" in block:
                assert block["image"]["format"] in {"png", "jpeg", "gif", "webp"}
                base64.b64decode(block["image"]["source"]["bytes"], validate=True)
            if "toolUse" in block:
                assert isinstance(block["toolUse"]["input"], dict)
                assert turn["role"] == "assistant"
    for block in body.get("system", []):
        assert set(block) == {"text"} and block["text"].strip()
    uses_tools = any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])
    if uses_tools:
        assert body["toolConfig"]["tools"]
    for tool in body.get("toolConfig", {}).get("tools", []):
        spec = tool["toolSpec"]
        assert spec["name"] and spec["inputSchema"]["json"]["type"] == "object"


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_every_sample_request_translates_to_a_valid_body(path):
    chat = load(path)
    if path.stem in NEEDS_FETCH:
        with pytest.raises(UnsupportedContent, match="data: URLs or s3://"):
            converse_request(chat)
        return
    body = converse_request(chat)
    assert_valid_converse(body)
    system_texts = [m["content"] for m in chat["messages"] if m["role"] in ("system", "developer")]
    if (chat.get("response_format") or {}).get("type") == "json_object":
        system_texts.append(bedrock.JSON_INSTRUCTION)
    assert [b["text"] for b in body.get("system", [])] == system_texts
    assert all(t["role"] in ("user", "assistant") for t in body["messages"])


def test_basic():
    body = converse_request(sample_request("basic"))
    assert body == {
        "system": [{"text": "You are a helpful assistant."}],
        "messages": [{"role": "user", "content": [{"text": "What is the name of the LLM provider?"}]}],
    }


def test_full_request_parameters_images_and_tools():
    body = converse_request(sample_request("full"))
    # top_p goes only without temperature, and the whitespace-only "\n\n" stop is left out (Claude rejects both)
    assert body["inferenceConfig"] == {"maxTokens": 1000, "temperature": 0.7, "stopSequences": ["END"]}
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"text": "What's in this image?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
    ]
    (tool,) = body["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "get_weather"
    assert tool["toolSpec"]["description"] == "Get the current weather in a given location"
    assert tool["toolSpec"]["inputSchema"]["json"]["required"] == ["location"]
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "my_function"}}
    assert "outputConfig" not in body  # json_object has no Converse form: an instruction instead
    assert body["system"] == [
        {"text": "You are a helpful assistant that specializes in technical documentation and code analysis."},
        {"text": bedrock.JSON_INSTRUCTION},
    ]
    assert "additionalModelRequestFields" not in body


def test_image_jpg_mime_becomes_jpeg():
    body = converse_request(sample_request("image-inline"))
    image = body["messages"][0]["content"][1]["image"]
    assert image == {"format": "jpeg", "source": {"bytes": "/9j/4AAQSkZJRgABAQ=="}}


def test_plain_data_url_and_s3_image():
    chat = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/gif,GIF89a%01"}},
                    {"type": "image_url", "image_url": {"url": "s3://bucket/cat.WEBP"}},
                ],
            }
        ]
    }
    gif, webp = converse_request(chat)["messages"][0]["content"]
    assert base64.b64decode(gif["image"]["source"]["bytes"]) == b"GIF89a\x01"
    assert webp == {"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/cat.WEBP"}}}}


def test_tool_calls_and_merged_tool_results():
    body = converse_request(sample_request("tool-call"))
    _, assistant, results = body["messages"]
    assert [b["toolUse"] for b in assistant["content"]] == [
        {
            "toolUseId": "call_iMGPsr4Xx1u0G5sOzFsTCbQU",
            "name": "get_weather",
            "input": {"format": "celsius", "location": "Columbus, OH"},
        },
        {"toolUseId": "call_5rQmXtLpZ9wKvNbJhGyDsFcE", "name": "get_time", "input": {}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "call_iMGPsr4Xx1u0G5sOzFsTCbQU",
                    "content": [{"text": '{ "temperature": 15, "condition": "Cloudy" }'}],
                }
            },
            {
                "toolResult": {
                    "toolUseId": "call_5rQmXtLpZ9wKvNbJhGyDsFcE",
                    "content": [{"text": '{ "time": "2026-08-12T12:00:00Z" }'}],
                }
            },
        ],
    }
    # No tools declared, yet the history uses them: Converse needs them in toolConfig.
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == ["get_weather", "get_time"]


def test_multi_turn_tools_alternate():
    body = converse_request(sample_request("multi-turn-tools"))
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert body["messages"][4]["content"][0]["toolResult"]["toolUseId"] == "call_2"
    assert "toolChoice" not in body["toolConfig"]


def test_same_role_messages_merge_and_developer_is_system():
    chat = {
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "  "}]},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "three"},
            {"role": "system", "content": "Late rule."},
            {"role": "user", "content": "four"},
        ]
    }
    body = converse_request(chat)
    assert body["system"] == [{"text": "Be brief."}, {"text": "Late rule."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
        {"role": "assistant", "content": [{"text": "three"}]},
        {"role": "user", "content": [{"text": "four"}]},
    ]


def test_user_text_after_tool_results_joins_their_turn():
    chat = sample_request("parallel-tool-call")
    chat["messages"].append({"role": "user", "content": "Thanks"})
    last = converse_request(chat)["messages"][-1]
    assert [next(iter(b)) for b in last["content"]] == ["toolResult", "toolResult", "text"]


WEATHER_TOOLS = sample_request("multi-turn-tools")["tools"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
        (None, None),
    ],
)
def test_tool_choice(choice, expected):
    chat = {"messages": [{"role": "user", "content": "hi"}], "tools": WEATHER_TOOLS}
    if choice is not None:
        chat["tool_choice"] = choice
    config = converse_request(chat)["toolConfig"]
    assert config.get("toolChoice") == expected
    assert config["tools"][0]["toolSpec"]["name"] == "get_weather"


def test_tool_choice_none_drops_tools_unless_history_needs_them():
    fresh = {"messages": [{"role": "user", "content": "hi"}], "tools": WEATHER_TOOLS, "tool_choice": "none"}
    assert "toolConfig" not in converse_request(fresh)
    history = {**sample_request("multi-turn-tools"), "tool_choice": "none"}
    config = converse_request(history)["toolConfig"]
    assert config == {"tools": converse_request(sample_request("multi-turn-tools"))["toolConfig"]["tools"]}


def test_bad_tool_arguments_raise():
    chat = sample_request("multi-turn-tools")
    chat["messages"][1]["tool_calls"][0]["function"]["arguments"] = '["not", "an object"]'
    with pytest.raises(UnsupportedContent, match="JSON object"):
        converse_request(chat)


def test_structured_output_uses_output_config():
    chat = sample_request("structured-output")
    body = converse_request(chat)
    definition = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert body["outputConfig"]["textFormat"]["type"] == "json_schema"
    assert definition["name"] == "person"
    assert json.loads(definition["schema"]) == chat["response_format"]["json_schema"]["schema"]


def test_generation_config_stop_and_max_completion_tokens():
    body = converse_request(
        {"messages": [{"role": "user", "content": "x"}], "stop": "END", "max_tokens": 5, "max_completion_tokens": 7}
    )
    assert body["inferenceConfig"] == {"maxTokens": 7, "stopSequences": ["END"]}
    body = converse_request(sample_request("generation-config"))
    assert body["inferenceConfig"] == {"maxTokens": 1000, "temperature": 0.7, "stopSequences": ["END"]}
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}


def test_sampling_ranges():
    chat = {"messages": [{"role": "user", "content": "x"}], "temperature": 1.5, "top_p": 0.5}
    assert converse_request(chat)["inferenceConfig"] == {"temperature": 1.0}  # OpenAI allows 2, Converse 1
    assert converse_request({**chat, "temperature": None})["inferenceConfig"] == {"topP": 0.5}


@pytest.mark.parametrize(("name", "budget"), [("reasoning", 8192), ("reasoning_max", 24576)])
def test_reasoning_effort_enables_thinking(name, budget):
    body = converse_request(sample_request(name))
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": budget}}
    assert body["inferenceConfig"]["maxTokens"] > budget


def test_reasoning_budget_respects_max_tokens():
    chat = {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high", "max_tokens": 3000}
    body = converse_request(chat)
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2999
    assert body["inferenceConfig"]["maxTokens"] == 3000
    assert "additionalModelRequestFields" not in converse_request({**chat, "max_tokens": 1000})
    assert "additionalModelRequestFields" not in converse_request({**chat, "reasoning_effort": "none"})


def test_thinking_drops_sampling_and_yields_to_forced_tools():
    chat = {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low", "temperature": 0.2, "top_p": 0.9}
    body = converse_request(chat)
    assert body["inferenceConfig"] == {"maxTokens": 2048 + 4096}
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2048
    forced = converse_request({**chat, "tools": WEATHER_TOOLS, "tool_choice": "required"})
    assert "additionalModelRequestFields" not in forced and forced["inferenceConfig"] == {"temperature": 0.2}
    auto = converse_request({**chat, "tools": WEATHER_TOOLS, "tool_choice": "auto"})
    assert "thinking" in auto["additionalModelRequestFields"]


def test_foreign_tool_ids_are_made_valid_consistently():
    chat = sample_request("multi-turn-tools")
    chat["messages"][1]["tool_calls"][0]["id"] = chat["messages"][2]["tool_call_id"] = "toolu/01 é" + "x" * 80
    body = converse_request(chat)
    use_id = body["messages"][1]["content"][0]["toolUse"]["toolUseId"]
    assert use_id == body["messages"][2]["content"][0]["toolResult"]["toolUseId"]
    assert len(use_id) == 64 and use_id.startswith("toolu_01__x")


def test_reasoning_replay():
    body = converse_request(sample_request("reasoning_replay"))
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Two plus two.", "signature": "SIG-replay=="}}},
        {"text": "4"},
    ]
    unsigned = converse_request(sample_request("reasoning_replay_unsigned"))
    assert unsigned["messages"][1]["content"] == [{"text": "Hello"}]


def test_model_path():
    assert (
        bedrock.model_path("anthropic.claude-3-5-sonnet-20240620-v1:0")
        == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    )
    assert bedrock.model_path("arn:aws:bedrock:us-east-1:1:inference-profile/x", stream=True) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"
    )


# ---------------------------------------------------------------------------------------------- responses

EXPECTED = {
    "basic": ("Hello world", "stop", {"prompt_tokens": 18, "completion_tokens": 46, "total_tokens": 64}),
    "cache_write": (
        "ok",
        "stop",
        {
            "prompt_tokens": 2403,
            "completion_tokens": 9,
            "total_tokens": 2412,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 2387},
        },
    ),
    "max_tokens": ("Partial response", "length", {"prompt_tokens": 18, "completion_tokens": 46, "total_tokens": 64}),
    "reasoning": ("The answer is 4.", "stop", {"prompt_tokens": 18, "completion_tokens": 46, "total_tokens": 64}),
    "reasoning_unsigned": (
        "The answer is 4.",
        "stop",
        {"prompt_tokens": 18, "completion_tokens": 46, "total_tokens": 64},
    ),
    "tool": (None, "tool_calls", None),
}


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: p.stem)
def test_every_sample_response(path):
    body = load(path)
    content, finish, usage = EXPECTED[path.stem]
    out = chat_response(body, "anthropic.claude-3-5-sonnet")
    parsed = ChatCompletion.model_validate(out)
    assert parsed.model == "anthropic.claude-3-5-sonnet" and parsed.id.startswith("chatcmpl-")
    assert parsed.object == "chat.completion"
    (choice,) = parsed.choices
    assert choice.message.content == content
    assert choice.finish_reason == finish
    assert out.get("usage") == usage
    if usage:
        assert usage["total_tokens"] == body["usage"]["totalTokens"]  # Bedrock's total counts cache tokens too


def test_response_tool_calls():
    message = chat_response(sample_response("tool"), "m")["choices"][0]["message"]
    assert message["tool_calls"] == [
        {
            "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
            "type": "function",
            "function": {"name": "top_song", "arguments": '{"sign":"WZPZ"}'},
        },
        {
            "id": "tooluse_kZJMlvQmRJ6eAyxxx",
            "type": "function",
            "function": {"name": "hello", "arguments": '{"sign":"world"}'},
        },
    ]


def test_response_reasoning():
    signed = chat_response(sample_response("reasoning"), "m")["choices"][0]["message"]
    assert signed["reasoning_content"] == "Two plus two is four."
    assert signed["reasoning_signature"] == "SIG-xyz=="
    unsigned = chat_response(sample_response("reasoning_unsigned"), "m")["choices"][0]["message"]
    assert unsigned["reasoning_content"] == "Two plus two is four." and "reasoning_signature" not in unsigned
    # What came back replays as it went out.
    replay = converse_request(
        {"messages": [{"role": "user", "content": "2+2?"}, signed, {"role": "user", "content": "ok"}]}
    )
    assert replay["messages"][1]["content"] == sample_response("reasoning")["output"]["message"]["content"]


def test_redacted_reasoning_round_trips():
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}}, {"text": "Hi"}],
            }
        },
        "stopReason": "end_turn",
    }
    message = chat_response(body, "m")["choices"][0]["message"]
    assert message["reasoning_redacted"] == ["ZW5jcnlwdGVk"] and "reasoning_content" not in message
    replay = converse_request(
        {"messages": [{"role": "user", "content": "x"}, message, {"role": "user", "content": "y"}]}
    )
    assert replay["messages"][1]["content"] == body["output"]["message"]["content"]


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
    ],
)
def test_finish_reasons(stop, finish):
    assert bedrock.finish_reason(stop) == finish


# ---------------------------------------------------------------------------------------------- stream


def stream_events(include_tools: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """A ConverseStream answer: reasoning, text, then two parallel tool calls. Bedrock pads each payload with a
    "p" field of filler characters to hide lengths; it must be ignored."""
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant", "p": "abcdefghijkl"}),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Columbus and "}}, "p": "abc"},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Berlin."}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "SIG=="}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Checking "}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "both ☀."}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
    ]
    if include_tools:
        for index, (tool_id, city) in enumerate([("tooluse_a", "Columbus"), ("tooluse_b", "Berlin")], start=2):
            events += [
                (
                    "contentBlockStart",
                    {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_id, "name": "get_weather"}}},
                ),
                ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": '{"loca'}}}),
                (
                    "contentBlockDelta",
                    {"contentBlockIndex": index, "delta": {"toolUse": {"input": f'tion":"{city}"}}'}}},
                ),
                ("contentBlockStop", {"contentBlockIndex": index}),
            ]
    events += [
        ("messageStop", {"stopReason": "tool_use" if include_tools else "end_turn"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 20, "outputTokens": 30, "totalTokens": 60, "cacheReadInputTokens": 10},
                "metrics": {"latencyMs": 900},
            },
        ),
    ]
    return events


def wire(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    headers = {":content-type": "application/json", ":message-type": "event"}
    return b"".join(encode_message({**headers, ":event-type": kind}, json.dumps(p).encode()) for kind, p in events)


def translate(data: bytes, cut: int, include_usage: bool) -> tuple[StreamToChat, list[dict[str, Any]]]:
    decoder, translator, chunks = EventStreamDecoder(), StreamToChat("claude", include_usage), []
    for start in range(0, len(data), cut):
        for message in decoder.feed(data[start : start + cut]):
            assert message.headers[":message-type"] == "event"
            chunks += translator.feed(message.headers[":event-type"], json.loads(message.payload))
    assert decoder.pending == 0
    return translator, chunks


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"content": "", "reasoning": "", "signature": "", "tools": {}, "finish": None, "usage": None}
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        if not chunk["choices"]:
            out["usage"] = chunk["usage"]
            continue
        choice = chunk["choices"][0]
        delta = choice["delta"]
        out["content"] += delta.get("content") or ""
        out["reasoning"] += delta.get("reasoning_content") or ""
        out["signature"] += delta.get("reasoning_signature") or ""
        for call in delta.get("tool_calls") or []:
            slot = out["tools"].setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] = call.get("function", {}).get("name") or slot["name"]
            slot["arguments"] += call.get("function", {}).get("arguments") or ""
        out["finish"] = choice["finish_reason"] or out["finish"]
    return out


STREAM_USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 30,
    "total_tokens": 60,
    "prompt_tokens_details": {"cached_tokens": 10, "cache_creation_tokens": 0},
}


@pytest.mark.parametrize("cut", [1, 7, 64, 1 << 20])
def test_stream_reassembles(cut):
    translator, chunks = translate(wire(stream_events()), cut, include_usage=True)
    got = assemble(chunks)
    assert got["content"] == "Checking both ☀."
    assert got["reasoning"] == "Columbus and Berlin." and got["signature"] == "SIG=="
    assert got["tools"] == {
        0: {"id": "tooluse_a", "name": "get_weather", "arguments": '{"location":"Columbus"}'},
        1: {"id": "tooluse_b", "name": "get_weather", "arguments": '{"location":"Berlin"}'},
    }
    assert got["finish"] == "tool_calls"
    assert got["usage"] == translator.usage == STREAM_USAGE
    assert chunks[-1] == {**chunks[-1], "choices": [], "usage": STREAM_USAGE}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({c["id"] for c in chunks}) == 1 and all(c["model"] == "claude" for c in chunks)


def test_stream_without_usage_chunk_still_records_usage():
    translator, chunks = translate(wire(stream_events(include_tools=False)), 5, include_usage=False)
    assert all(chunk["choices"] for chunk in chunks)
    got = assemble(chunks)
    assert got["finish"] == "stop" and got["tools"] == {} and got["usage"] is None
    assert translator.usage == STREAM_USAGE and translator.finish_reason == "stop"


def test_stream_exception_event_maps_to_error():
    frame = encode_message(
        {":message-type": "exception", ":exception-type": "throttlingException", ":content-type": "application/json"},
        b'{"message":"Too many tokens, please wait before trying again."}',
    )
    (message,) = EventStreamDecoder().feed(frame)
    assert error_of(200, message.payload, message.headers[":exception-type"]) == (
        "rate_limit_error",
        "Too many tokens, please wait before trying again.",
    )


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "body", "error_type", "expected"),
    [
        (
            429,
            b'{"message":"Too many requests"}',
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ("rate_limit_error", "Too many requests"),
        ),
        (
            400,
            b'{"message":"Malformed input request"}',
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ("invalid_request_error", "Malformed input request"),
        ),
        (
            403,
            b'{"Message":"User is not authorized"}',
            "AccessDeniedException",
            ("permission_error", "User is not authorized"),
        ),
        (
            403,
            b'{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}',
            None,
            ("authentication_error", "The security token included in the request is invalid."),
        ),
        (
            404,
            b'{"message":"Could not resolve the foundation model"}',
            None,
            ("not_found_error", "Could not resolve the foundation model"),
        ),
        (503, b"", "ServiceUnavailableException", ("server_error", "ServiceUnavailableException")),
        (502, b"<html>Bad Gateway</html>", None, ("server_error", "<html>Bad Gateway</html>")),
        (
            200,
            b'{"message":"stream broke","originalStatusCode":500}',
            "modelStreamErrorException",
            ("server_error", "stream broke"),
        ),
        (400, b"{}", None, ("invalid_request_error", "Bedrock returned HTTP 400")),
    ],
)
def test_error_of(status, body, error_type, expected):
    assert error_of(status, body, error_type) == expected


# ---------------------------------------------------------------------------------------------- embeddings


def test_titan_embeddings():
    assert titan_embeddings_request("hello") == {"inputText": "hello"}
    assert titan_embeddings_request("hello", 256) == {"inputText": "hello", "dimensions": 256}
    sample = load(SAMPLES / "response" / "bedrock-titan" / "embeddings.json")
    out = titan_embeddings_response(
        [sample, {"embedding": [0.5], "inputTextTokenCount": 4}], "amazon.titan-embed-text-v2:0"
    )
    parsed = CreateEmbeddingResponse.model_validate(out)
    assert [d.index for d in parsed.data] == [0, 1]
    assert parsed.data[0].embedding == sample["embedding"]
    assert out["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert parsed.model == "amazon.titan-embed-text-v2:0"
