"""The OpenAI-compatible front door, driven by the official `openai` SDK, against recorded real traffic.

Fixtures: `tests/fixtures/providers/openai/*.yaml` are real OpenAI HTTP interactions recorded by
envoyproxy/ai-gateway (tests/internal/testopenai/cassettes at c217da8a, Apache-2.0; see tests/fixtures/README.md).
The replay backend answers each cassette's recorded response; the SDK must parse what the gateway forwards
with content, tool calls and usage intact, and the backend must receive the client's request unchanged
(except the model id the route names and the stream usage option).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.support.processes import Gateway

from .conftest import CLIENT_KEY

CASSETTES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "openai"
# Chat cassettes the SDK can replay as chat completions (audio/image outputs are covered by the same path
# but their request bodies carry binary inputs the cassette elides).
CHAT_OK = [
    "chat-basic",
    "chat-detailed-usage",
    "chat-image-to-text",
    "chat-json-mode",
    "chat-multimodal",
    "chat-multiturn",
    "chat-openai-agents-python",
    "chat-parallel-tools",
    "chat-reasoning",
    "chat-tools",
    "chat-web-search",
    "chat-text-to-image-tool",
]
CHAT_STREAMS = ["chat-streaming", "chat-streaming-detailed-usage", "chat-streaming-web-search"]
EMBEDDINGS_OK = [
    "embeddings-base64",
    "embeddings-basic",
    "embeddings-dimensions",
    "embeddings-large-text",
    "embeddings-mixed-batch",
    "embeddings-tokens",
    "embeddings-whitespace",
]


def cassette(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    interaction = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"][0]
    return json.loads(interaction["request"]["body"]), interaction["response"]


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{gateway.port}/v1", api_key=CLIENT_KEY, max_retries=0)


@pytest.mark.parametrize("name", CHAT_OK)
def test_chat_completion_replays_through_the_sdk(llm_gateway: Gateway, recorded: Any, name: str) -> None:
    request, response = cassette(name)
    recorded_answer = json.loads(response["body"])
    result = client(llm_gateway).chat.completions.with_raw_response.create(**{**request, "model": f"replay/{name}"})
    completion = result.parse()
    assert result.headers["x-gateway-backend"] == "replay"
    expected = recorded_answer["choices"][0]["message"]
    got = completion.choices[0].message
    assert got.content == expected.get("content")
    assert [c.model_dump() for c in got.tool_calls or []] == [
        {**c, "function": {**c["function"]}} for c in expected.get("tool_calls") or []
    ]
    assert completion.usage is not None
    assert completion.usage.model_dump(exclude_none=True) == {
        k: v for k, v in recorded_answer["usage"].items() if v is not None
    } | {k: v for k, v in completion.usage.model_dump(exclude_none=True).items() if k.endswith("_details")}
    assert completion.usage.total_tokens == recorded_answer["usage"]["total_tokens"]
    assert completion.model == recorded_answer["model"]
    # The backend got the client's request as sent, with the route's model id; the client's key stayed here.
    [seen] = recorded()
    assert seen["body"] == {**request, "model": name}
    assert seen["headers"]["authorization"] == "Bearer sk-replay"


@pytest.mark.parametrize("name", CHAT_STREAMS)
def test_chat_stream_replays_through_the_sdk(llm_gateway: Gateway, recorded: Any, name: str) -> None:
    request, response = cassette(name)
    recorded_chunks = [json.loads(line[6:]) for line in response["body"].splitlines() if line.startswith("data: {")]
    stream = client(llm_gateway).chat.completions.create(**{**request, "model": f"replay/{name}"})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected_text = "".join((c["choices"][0]["delta"].get("content") or "") for c in recorded_chunks if c["choices"])
    assert text == expected_text
    assert len([c for c in chunks if c.choices]) == len([c for c in recorded_chunks if c["choices"]])
    usage_chunks = [c for c in chunks if c.usage is not None]
    wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    if wants_usage:
        assert usage_chunks[-1].usage.total_tokens == recorded_chunks[-1]["usage"]["total_tokens"]
    else:
        assert usage_chunks == []  # the gateway asked for usage on its own account and keeps it to itself
    [seen] = recorded()
    assert seen["body"]["stream_options"]["include_usage"] is True


def test_streamed_usage_reaches_the_access_log(llm_gateway: Gateway) -> None:
    list(
        client(llm_gateway).chat.completions.create(
            model="gpt-echo", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    )
    client(llm_gateway).chat.completions.create(model="gpt-echo", messages=[{"role": "user", "content": "hi"}])
    entries = _access_entries(llm_gateway, "gpt-echo")
    streamed = next(e for e in entries if e["stream"])
    whole = next(e for e in entries if not e["stream"])
    for entry in (streamed, whole):
        assert entry["backend"] == "replay"
        assert entry["original_model"] == "gpt-echo"
        assert entry["request_model"] == "echo"
        assert entry["response_model"] == "echo-1"
        assert (entry["input_tokens"], entry["output_tokens"]) == (5, 1)
        assert entry["cost_usd"] == pytest.approx((5 * 1.0 + 1 * 2.0) / 1e6)
    assert streamed["ttft_ms"] is not None and streamed["ttft_ms"] <= streamed["duration_ms"]


@pytest.mark.parametrize("name", EMBEDDINGS_OK)
def test_embeddings_replay_through_the_sdk(llm_gateway: Gateway, name: str) -> None:
    request, response = cassette(name)
    recorded_answer = json.loads(response["body"])
    result = client(llm_gateway).embeddings.create(**{**request, "model": f"replay/{name}"})
    assert len(result.data) == len(recorded_answer["data"])
    assert result.usage.prompt_tokens == recorded_answer["usage"]["prompt_tokens"]
    if request.get("encoding_format") != "base64":
        assert result.data[0].embedding[:5] == recorded_answer["data"][0]["embedding"][:5]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("chat-bad-request", openai.BadRequestError),
        ("chat-unknown-model", openai.NotFoundError),
        ("chat-no-messages", openai.BadRequestError),
    ],
)
def test_provider_errors_keep_status_and_message(llm_gateway: Gateway, name: str, error: type[Exception]) -> None:
    request, response = cassette(name)
    expected = json.loads(response["body"])["error"]
    body = {**request, "model": f"replay/{name}"}
    if not body.get("messages"):
        # The gateway refuses a request without messages itself, the way OpenAI does.
        with pytest.raises(error) as caught:
            client(llm_gateway).chat.completions.create(**body)
        assert caught.value.status_code == 400  # type: ignore[attr-defined]
        return
    with pytest.raises(error) as caught:
        client(llm_gateway).chat.completions.create(**body)
    assert caught.value.status_code == response["code"]  # type: ignore[attr-defined]
    assert caught.value.body["message"] == expected["message"]  # type: ignore[attr-defined]


def test_azure_backend_uses_deployment_path_and_api_key(llm_gateway: Gateway, recorded: Any) -> None:
    request, response = cassette("azure-chat-basic")
    completion = client(llm_gateway).chat.completions.create(**{**request, "model": "azure/azure-chat-basic"})
    assert completion.choices[0].message.content == json.loads(response["body"])["choices"][0]["message"]["content"]
    [seen] = recorded()
    assert seen["path"] == "/openai/deployments/azure-chat-basic/chat/completions?api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "az-key" and "authorization" not in seen["headers"]


@pytest.mark.parametrize("sample", ["basic", "reasoning", "custom-tool"])
def test_responses_api_passes_through(llm_gateway: Gateway, sample: str) -> None:
    result = client(llm_gateway).responses.create(model=f"replay/responses-{sample}", input="hi")
    assert result.output and result.usage is not None and result.usage.total_tokens > 0


def test_responses_api_streams_through(llm_gateway: Gateway) -> None:
    # The recorded sample omits content_part events, which the SDK's accumulating helper needs: read raw events.
    events = list(client(llm_gateway).responses.create(model="replay/responses-stream", input="hi", stream=True))
    assert [e.type for e in events if e.type.endswith(".delta")][:1] == ["response.output_text.delta"]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None and completed.response.usage.total_tokens > 0


def test_model_list_and_unknown_models(llm_gateway: Gateway) -> None:
    names = [m.id for m in client(llm_gateway).models.list()]
    assert "gpt-echo" in names and "after-429" in names
    assert client(llm_gateway).models.retrieve("gpt-echo").owned_by == "replay"
    with pytest.raises(openai.NotFoundError) as caught:
        client(llm_gateway).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"


def test_malformed_requests_get_clear_errors(llm_gateway: Gateway) -> None:
    url = f"http://127.0.0.1:{llm_gateway.port}/v1/chat/completions"
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    not_json = httpx.post(url, content=b"{not json", headers=auth)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    no_model = httpx.post(url, json={"messages": []}, headers=auth)
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    wrong_method = httpx.get(url, headers=auth)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    # The gateway is still serving.
    assert client(llm_gateway).chat.completions.create(model="gpt-echo", messages=[{"role": "user", "content": "x"}])


def test_callers_without_a_valid_key_are_refused(llm_gateway: Gateway) -> None:
    bad = openai.OpenAI(base_url=f"http://127.0.0.1:{llm_gateway.port}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="gpt-echo", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401
    assert "www-authenticate" in caught.value.response.headers
    anonymous = httpx.get(f"http://127.0.0.1:{llm_gateway.port}/v1/models")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"


def _access_entries(gateway: Gateway, model: str) -> list[dict[str, Any]]:
    import time

    path: Path = gateway.access_log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists():
            entries = [json.loads(line) for line in path.read_text().splitlines()]
            found = [e for e in entries if e.get("original_model") == model]
            if len(found) >= 2:
                return found
        time.sleep(0.1)
    raise AssertionError(f"no access log entries for {model}")
