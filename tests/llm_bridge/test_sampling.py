"""MCP sampling answered by the gateway's own LLM routes: an upstream asks `sampling/createMessage`
mid-call and the gateway answers through the bridge (with the caller's policy and records), in every
client/upstream era pair, for clients that cannot sample themselves."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.client import CLIENT_ERAS, connect, text_of
from tests.support.processes import Gateway

from .conftest import llm_config

pytestmark = pytest.mark.anyio

UPSTREAM_ERAS = ["2025-11-25", "auto"]
PAIRS = [(client, upstream) for client in CLIENT_ERAS for upstream in UPSTREAM_ERAS]


def sampling_gateway(gateway: Any, upstreams: Any, replay: str, tmp_path: Any, upstream_era: str) -> Gateway:
    _, url = upstreams("--name", "up")
    config = {
        **llm_config(replay, sampling_model="gpt-echo"),
        "auth": {"allow_anonymous": True},
        "upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": upstream_era}},
        "telemetry": {"access_log": str(tmp_path / "access.log")},
    }
    return gateway(config, upstreams_ready=1)


@pytest.mark.parametrize(("client_era", "upstream_era"), PAIRS)
async def test_upstream_sampling_is_answered_by_the_gateway(
    upstreams: Any, gateway: Any, replay: str, tmp_path: Any, recorded: Any, client_era: str, upstream_era: str
) -> None:
    gw = sampling_gateway(gateway, upstreams, replay, tmp_path, upstream_era)
    async with connect(gw.url, client_era) as client:  # declares no sampling capability
        result = await client.call_tool("up__sample", {"prompt": "hello"})
    assert not result.is_error, text_of(result)
    assert text_of(result) == "pong"
    [seen] = [r for r in recorded() if r["path"] == "/v1/chat/completions"]
    assert seen["body"]["messages"] == [{"role": "user", "content": "hello"}]
    assert seen["body"]["max_tokens"] == 64
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = (
            [json.loads(x) for x in (tmp_path / "access.log").read_text().splitlines()]
            if (tmp_path / "access.log").exists()
            else []
        )
        sampled = [e for e in lines if e.get("method") == "llm/chat"]
        if sampled:
            break
        time.sleep(0.1)
    assert sampled[0]["original_model"] == "gpt-echo" and sampled[0]["tenant"] == "default"


@pytest.mark.parametrize(("client_era", "upstream_era"), [("legacy", "2025-11-25"), ("modern", "auto")])
async def test_the_sampled_completion_joins_the_tool_calls_trace(
    upstreams: Any, gateway: Any, replay: str, tmp_path: Any, client_era: str, upstream_era: str
) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        _, url = upstreams("--name", "up")
        config = {
            **llm_config(replay, sampling_model="gpt-echo"),
            "auth": {"allow_anonymous": True},
            "upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": upstream_era}},
            "telemetry": {"tracing": {"exporter": "otlp-http", "endpoint": receiver.url}},
        }
        gw = gateway(config, upstreams_ready=1)
        async with connect(gw.url, client_era) as client:
            assert text_of(await client.call_tool("up__sample", {"prompt": "hello"})) == "pong"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            spans = {s["name"]: s for s in receiver.spans()}
            if "tools/call up__sample" in spans and any(name.startswith("chat ") for name in spans):
                break
            time.sleep(0.1)
        assert "tools/call up__sample" in spans, list(spans)
        llm_name = next(name for name in spans if name.startswith("chat "))
        tool, llm = spans["tools/call up__sample"], spans[llm_name]
        assert llm["trace_id"] == tool["trace_id"] and llm["parent_span_id"] == tool["span_id"]
        assert llm["attributes"]["openinference.span.kind"] == "LLM"
