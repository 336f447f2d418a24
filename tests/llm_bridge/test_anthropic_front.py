"""The Anthropic-compatible `/v1/messages`, driven by the official `anthropic` SDK: passed through to an
Anthropic backend, and translated to an OpenAI-compatible one (recorded real OpenAI traffic, see
tests/fixtures/README.md: envoyproxy/ai-gateway cassettes and agentgateway samples, Apache-2.0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from tests.support.processes import Gateway

from .conftest import CLIENT_KEY

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key=CLIENT_KEY, max_retries=0)


def native(name: str) -> Any:
    return json.loads((FIXTURES / "samples" / "response" / "anthropic" / f"{name}.json").read_text())


def cassette_answer(name: str) -> dict[str, Any]:
    interaction = yaml.safe_load((FIXTURES / "openai" / f"{name}.yaml").read_text())["interactions"][0]
    return json.loads(interaction["response"]["body"])


@pytest.mark.parametrize("name", ["basic", "tool", "thinking", "multiple_text_blocks"])
def test_messages_pass_through_to_anthropic(llm_gateway: Gateway, recorded: Any, name: str) -> None:
    raw = client(llm_gateway).messages.with_raw_response.create(
        model=f"claude/{name}", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "hi"}]
    )
    message = raw.parse()
    assert raw.headers["x-gateway-backend"] == "claude"
    assert message.model_dump(exclude_none=True) == anthropic.types.Message.model_validate(native(name)).model_dump(
        exclude_none=True
    )
    [seen] = recorded()
    # The request went as the client sent it (model id aside), with the backend's key instead of the client's.
    assert seen["body"] == {
        "model": name,
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert seen["headers"]["x-api-key"] == "ant-key"


@pytest.mark.parametrize("name", ["stream_basic", "stream_tool", "stream_thinking", "stream_tool_empty_args"])
def test_message_streams_pass_through(llm_gateway: Gateway, name: str) -> None:
    with client(llm_gateway).messages.stream(
        model=f"claude/{name}", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    text = (FIXTURES / "samples" / "response" / "anthropic" / f"{name}.json").read_text()
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("text", "") for d in deltas) == "".join(b.text for b in final.content if b.type == "text")
    uses = [b for b in final.content if b.type == "tool_use"]
    arguments = "".join(d.get("partial_json", "") for d in deltas)
    assert [u.input for u in uses] == ([json.loads(arguments)] if arguments else [{}] if uses else [])
    assert (
        final.usage.output_tokens == [e for e in events if e["type"] == "message_delta"][-1]["usage"]["output_tokens"]
    )


def test_messages_translate_to_an_openai_backend(llm_gateway: Gateway, recorded: Any) -> None:
    message = client(llm_gateway).messages.create(
        model="replay/chat-tools",
        max_tokens=200,
        system="Be brief.",
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What is the weather like in Boston today?"}],
    )
    answer = cassette_answer("chat-tools")
    call = answer["choices"][0]["message"]["tool_calls"][0]
    [use] = [b for b in message.content if b.type == "tool_use"]
    assert (use.id, use.name, use.input) == (
        call["id"],
        call["function"]["name"],
        json.loads(call["function"]["arguments"]),
    )
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens + message.usage.output_tokens == answer["usage"]["total_tokens"]
    [seen] = recorded()
    body = seen["body"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["role"] == "user"
    assert body["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 200


def test_message_stream_translates_from_an_openai_backend(llm_gateway: Gateway) -> None:
    with client(llm_gateway).messages.stream(
        model="replay/chat-streaming", max_tokens=100, messages=[{"role": "user", "content": "Hello!"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    body = yaml.safe_load((FIXTURES / "openai" / "chat-streaming.yaml").read_text())["interactions"][0]["response"][
        "body"
    ]
    chunks = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    assert text == "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert final.stop_reason == "end_turn"


def test_errors_reach_anthropic_clients_in_their_shape(llm_gateway: Gateway) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(llm_gateway).messages.create(
            model="always-429", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 429
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(llm_gateway).messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"
    bad = anthropic.Anthropic(base_url=f"http://127.0.0.1:{llm_gateway.port}", api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude/basic", max_tokens=10, messages=[{"role": "user", "content": "x"}])


def test_anthropic_model_list(llm_gateway: Gateway) -> None:
    names = [m.id for m in client(llm_gateway).models.list()]
    assert "gpt-echo" in names


def test_count_tokens_and_betas_reach_an_anthropic_backend(llm_gateway: Gateway, recorded: Any) -> None:
    count = client(llm_gateway).messages.count_tokens(
        model="claude/basic", messages=[{"role": "user", "content": "Hello, how are you?"}]
    )
    assert count.input_tokens == native("count_tokens")["input_tokens"]
    client(llm_gateway).messages.create(
        model="claude/basic",
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    counted, created = recorded()
    assert counted["path"] == "/v1/messages/count_tokens" and counted["body"]["model"] == "basic"
    assert counted["headers"]["x-api-key"] == "ant-key"
    assert created["headers"]["anthropic-beta"] == "context-1m-2025-08-07"
    with pytest.raises(anthropic.BadRequestError) as caught:  # other providers have no token counting
        client(llm_gateway).messages.count_tokens(
            model="replay/chat-basic", messages=[{"role": "user", "content": "x"}]
        )
    assert "count_tokens" in caught.value.body["error"]["message"]
