"""Routes over several backends: a backend answering 429 or 500, hanging, or unreachable hands the request
to the next one, and the response and the access log name the backend that answered."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.processes import Gateway

from .conftest import CLIENT_KEY

HI = [{"role": "user", "content": "hi"}]


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{gateway.port}/v1", api_key=CLIENT_KEY, max_retries=0)


def log_entry(gateway: Gateway, model: str, after: float, stream: bool = False) -> dict[str, Any]:
    path: Path = gateway.access_log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        found = [e for e in entries if e.get("original_model") == model and e["ts"] >= after and e["stream"] == stream]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no access log entry for {model}")


@pytest.mark.parametrize(
    ("model", "backend", "failed"),
    [
        ("after-429", "claude", "replay: 429"),
        ("after-500", "bedrock", "replay: 500"),
        ("after-hang", "replay", "slow: 504"),
        ("after-down", "replay", "down: 502"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_failing_backend_falls_back_to_the_next(
    llm_gateway: Gateway, model: str, backend: str, failed: str, stream: bool
) -> None:
    started = time.time() - 0.01
    if stream:
        with client(llm_gateway).chat.completions.with_streaming_response.create(
            model=model, messages=HI, stream=True
        ) as raw:
            assert raw.headers["x-gateway-backend"] == backend
            chunks = list(raw.parse())
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        raw = client(llm_gateway).chat.completions.with_raw_response.create(model=model, messages=HI)
        assert raw.headers["x-gateway-backend"] == backend
        assert raw.parse().choices[0].message.content
    entry = log_entry(llm_gateway, model, started, stream)
    assert entry["backend"] == backend and entry["status"] == "ok"
    assert entry["attempts"][0].startswith(failed)


def test_all_backends_failing_keeps_the_last_status(llm_gateway: Gateway) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client(llm_gateway).chat.completions.create(model="always-429", messages=HI)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"]


def test_backend_dying_mid_stream_ends_the_stream_with_an_error(llm_gateway: Gateway) -> None:
    stream = client(llm_gateway).chat.completions.create(model="replay/fault-midstream", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "replay" in str(caught.value)
    # The gateway goes on serving.
    assert (
        client(llm_gateway).chat.completions.create(model="gpt-echo", messages=HI).choices[0].message.content == "pong"
    )


def test_weights_spread_requests(llm_gateway: Gateway) -> None:
    served = Counter(
        client(llm_gateway)
        .chat.completions.with_raw_response.create(model="spread", messages=HI)
        .headers["x-gateway-backend"]
        for _ in range(80)
    )
    assert set(served) == {"replay", "replay2"}
    assert served["replay2"] > served["replay"]  # weight 3 against 1: P(failure) is far below 1e-4


def test_client_leaving_mid_stream_is_logged_and_harmless(llm_gateway: Gateway) -> None:
    started = time.time() - 0.01
    url = f"http://127.0.0.1:{llm_gateway.port}/v1/chat/completions"
    body = {"model": "replay/chat-streaming", "messages": HI, "stream": True}
    with httpx.stream("POST", url, json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"}) as response:
        next(response.iter_bytes())
    entry = log_entry(llm_gateway, "replay/chat-streaming", started, True)
    assert entry["status"] in ("ok", "error")  # the stream may have ended before the close was seen
    assert (
        client(llm_gateway).chat.completions.create(model="gpt-echo", messages=HI).choices[0].message.content == "pong"
    )


def test_a_client_leaving_a_long_stream_stops_the_backend_stream(
    llm_gateway: Gateway, replay: str, recorded: Any
) -> None:
    started = time.time() - 0.01
    url = f"http://127.0.0.1:{llm_gateway.port}/v1/chat/completions"
    body = {"model": "replay/slow-stream", "messages": HI, "stream": True}
    with httpx.stream("POST", url, json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"}) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break  # one chunk, then the client hangs up
    left = time.time()
    deadline = time.monotonic() + 2.5  # the whole stream would take 3 s
    while time.monotonic() < deadline and not httpx.get(f"{replay}/_aborted").json():
        time.sleep(0.05)
    [aborted] = httpx.get(f"{replay}/_aborted").json()
    assert aborted - left < 1.5
    entry = log_entry(llm_gateway, "replay/slow-stream", started, True)
    assert entry["error"] == 499 and entry["backend"] == "replay"
