"""OpenAI-shaped requests to Anthropic, Bedrock, Gemini and Vertex backends, through a real gateway.

The replay backend answers with provider-native response samples recorded by agentgateway
(agentgateway/agentgateway crates/llm/src/tests at 75b4e6ce, Apache-2.0; see tests/fixtures/README.md). The
`openai` SDK must parse every answer and stream, with content, tool calls and usage intact, and each
backend must have received its own provider's request shape and credentials, never the client's key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.processes import Gateway

from .conftest import CLIENT_KEY

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "samples"
_TOOL_CALL = json.loads((SAMPLES / "requests" / "completions" / "tool-call.json").read_text())
TOOL_REQUEST = {**_TOOL_CALL, "messages": [{"role": "system", "content": "Be brief."}, *_TOOL_CALL["messages"]]}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{gateway.port}/v1", api_key=CLIENT_KEY, max_retries=0)


def sample(provider: str, name: str) -> Any:
    return json.loads((SAMPLES / "response" / provider / f"{name}.json").read_text())


def ask(gateway: Gateway, model: str, **extra: Any) -> Any:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    return client(gateway).chat.completions.with_raw_response.create(model=model, messages=messages, **extra)


def test_anthropic_backend_answers_openai_shaped(llm_gateway: Gateway, recorded: Any) -> None:
    raw = ask(llm_gateway, "claude/basic", max_tokens=50)
    completion = raw.parse()
    native = sample("anthropic", "basic")
    assert raw.headers["x-gateway-backend"] == "claude"
    assert completion.choices[0].message.content == native["content"][0]["text"]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == native["model"]
    usage = native["usage"]
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    assert completion.usage.prompt_tokens == usage["input_tokens"] + cached + written
    assert completion.usage.completion_tokens == usage["output_tokens"]
    [seen] = recorded()
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "ant-key" and "authorization" not in seen["headers"]
    assert seen["headers"]["anthropic-version"]
    body = seen["body"]
    assert body["model"] == "basic" and body["max_tokens"] == 50
    assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert body["messages"] == [{"role": "user", "content": "Hello"}] or body["messages"][0]["role"] == "user"


def test_anthropic_tool_use_becomes_tool_calls(llm_gateway: Gateway, recorded: Any) -> None:
    completion = client(llm_gateway).chat.completions.create(
        **{**TOOL_REQUEST, "model": "claude/tool", "tools": [WEATHER_TOOL]}
    )
    native = sample("anthropic", "tool")
    uses = [b for b in native["content"] if b["type"] == "tool_use"]
    calls = completion.choices[0].message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (u["id"], u["name"], u["input"]) for u in uses
    ]
    assert completion.choices[0].finish_reason == "tool_calls"
    [seen] = recorded()
    messages = seen["body"]["messages"]
    # The OpenAI tool history became tool_use blocks and one user turn of tool_result blocks.
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    results = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
    uses_sent = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    assert {r["tool_use_id"] for r in results} == {u["id"] for u in uses_sent} and len(results) == 2
    assert seen["body"]["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]


@pytest.mark.parametrize("name", ["stream_basic", "stream_tool", "stream_thinking", "stream_message_delta_usage"])
def test_anthropic_streams_become_chunks(llm_gateway: Gateway, name: str) -> None:
    stream = client(llm_gateway).chat.completions.create(
        model=f"claude/{name}",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    lines = (SAMPLES / "response" / "anthropic" / f"{name}.json").read_text().splitlines()
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    arguments = "".join(e["delta"].get("partial_json", "") for e in events if e["type"] == "content_block_delta")
    got_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    got_arguments = "".join(
        t.function.arguments or "" for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []
    )
    assert got_text == text
    assert got_arguments == arguments
    final_usage = [e["usage"] for e in events if e["type"] == "message_delta"][-1]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == final_usage["output_tokens"]


@pytest.mark.parametrize("name", ["basic", "tool", "reasoning", "cache_write", "max_tokens"])
def test_bedrock_converse_answers_openai_shaped(llm_gateway: Gateway, recorded: Any, name: str) -> None:
    completion = client(llm_gateway).chat.completions.create(
        **{**TOOL_REQUEST, "model": f"bedrock/{name}", "tools": [WEATHER_TOOL]}
    )
    native = sample("bedrock", name)
    blocks = native["output"]["message"]["content"]
    message = completion.choices[0].message
    assert (message.content or "") == "".join(b.get("text", "") for b in blocks)
    assert [c.function.name for c in message.tool_calls or []] == [
        b["toolUse"]["name"] for b in blocks if "toolUse" in b
    ]
    if native.get("usage"):
        assert completion.usage.total_tokens == native["usage"]["totalTokens"]
    [seen] = recorded()
    assert seen["path"] == f"/model/{name}/converse"
    assert seen["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "x-amz-date" in seen["headers"] and CLIENT_KEY not in json.dumps(seen["headers"])
    body = seen["body"]
    assert body["system"] == [{"text": "Be brief."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


@pytest.mark.parametrize("name", ["basic", "tool"])
def test_bedrock_converse_stream_becomes_chunks(llm_gateway: Gateway, recorded: Any, name: str) -> None:
    stream = client(llm_gateway).chat.completions.create(
        model=f"bedrock/{name}",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    native = sample("bedrock", name)
    blocks = native["output"]["message"]["content"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(b.get("text", "") for b in blocks)
    calls: dict[int, str] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            calls[call.index] = calls.get(call.index, "") + (call.function.arguments or "")
    assert [json.loads(a) for a in calls.values()] == [b["toolUse"]["input"] for b in blocks if "toolUse" in b]
    assert chunks[-1].usage is not None
    [seen] = recorded()
    assert seen["path"] == f"/model/{name}/converse-stream"


@pytest.mark.parametrize("backend", ["gemini", "vertex"])
def test_gemini_answers_openai_shaped(llm_gateway: Gateway, recorded: Any, backend: str) -> None:
    completion = client(llm_gateway).chat.completions.create(
        **{**TOOL_REQUEST, "model": f"{backend}/tool", "tools": [WEATHER_TOOL]}
    )
    native = sample("vertex-gemini", "tool")
    parts = native["candidates"][0]["content"]["parts"]
    calls = completion.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts if "functionCall" in p
    ]
    assert completion.usage.prompt_tokens == native["usageMetadata"]["promptTokenCount"]
    [seen] = recorded()
    if backend == "gemini":
        assert seen["path"] == "/v1beta/models/tool:generateContent"
        assert seen["headers"]["x-goog-api-key"] == "g-key"
    else:
        assert seen["path"] == "/v1/projects/proj/locations/us-central1/publishers/google/models/tool:generateContent"
        assert seen["headers"]["authorization"] == "Bearer ya29"
    body = seen["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


def test_gemini_stream_and_reasoning(llm_gateway: Gateway, recorded: Any) -> None:
    chunks = list(
        client(llm_gateway).chat.completions.create(
            model="gemini/stream_tool",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [
        ("get_weather", {"location": "Tokyo"})
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 27
    [seen] = recorded()
    assert seen["path"] == "/v1beta/models/stream_tool:streamGenerateContent?alt=sse"
    reasoning = client(llm_gateway).chat.completions.create(
        model="gemini/reasoning", messages=[{"role": "user", "content": "hi"}]
    )
    native = sample("vertex-gemini", "reasoning")
    thoughts = "".join(p["text"] for p in native["candidates"][0]["content"]["parts"] if p.get("thought"))
    assert reasoning.choices[0].message.model_extra["reasoning_content"] == thoughts


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("claude-429", openai.RateLimitError, 429),
        ("bedrock/fault-500", openai.InternalServerError, 500),
        ("gemini/fault-429", openai.RateLimitError, 429),
    ],
)
def test_provider_errors_reach_openai_clients_with_their_status(
    llm_gateway: Gateway, model: str, error: type[Exception], status: int
) -> None:
    with pytest.raises(error) as caught:
        client(llm_gateway).chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert "injected" in caught.value.message  # type: ignore[attr-defined]


def test_embeddings_from_gemini_and_bedrock_titan(llm_gateway: Gateway, recorded: Any) -> None:
    gemini = client(llm_gateway).embeddings.create(model="gemini/embeddings", input=["first", "second"])
    predictions = sample("vertex", "embeddings")["predictions"]
    assert [d.embedding for d in gemini.data] == [p["embeddings"]["values"] for p in predictions]
    assert gemini.usage.prompt_tokens == sum(p["embeddings"]["statistics"]["token_count"] for p in predictions)
    titan = client(llm_gateway).embeddings.create(model="bedrock/embeddings", input=["one", "two"])
    assert [d.index for d in titan.data] == [0, 1]
    assert titan.data[0].embedding == sample("bedrock-titan", "embeddings")["embedding"]
    assert titan.usage.prompt_tokens == 6
    seen = recorded()
    assert seen[0]["path"] == "/v1beta/models/embeddings:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in seen[0]["body"]["requests"]] == ["first", "second"]
    titan_bodies = sorted(r["body"]["inputText"] for r in seen[1:])
    assert titan_bodies == ["one", "two"] and all(r["path"] == "/model/embeddings/invoke" for r in seen[1:])
