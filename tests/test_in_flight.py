"""Messages in flight: progress, logs, server-to-client requests and cancellation, relayed both ways.

Each test runs against an upstream speaking the handshake era (pinned) and one speaking 2026-07-28
(auto-negotiated), so legacy->legacy relaying and the input_required bridge are both exercised.
"""

from __future__ import annotations

import json
import time

import anyio
import pytest
from mcp_types import CreateMessageResult, ElicitResult, ListRootsResult, Root, TextContent

from tests.support.client import connect, text_of
from tests.support.processes import read_records, scripted_stdio_args

pytestmark = pytest.mark.anyio

ERAS = ["2025-11-25", "auto"]


def _http(url: str, era: str) -> dict:
    return {"transport": "streamable_http", "url": url, "protocol": era}


@pytest.mark.parametrize("era", ERAS)
async def test_progress_reaches_the_client_with_its_own_token(upstreams, gateway, era):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, era)}}, upstreams_ready=1)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(gw.url) as client:
        result = await client.call_tool("up__sleep", {"seconds": 0.5}, progress_callback=on_progress)
        assert not result.is_error
    assert len(seen) >= 3 and seen == sorted(seen)


@pytest.mark.parametrize("era", ERAS)
async def test_sampling_elicitation_and_roots_are_answered_by_the_calling_client(upstreams, gateway, era):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, era)}}, upstreams_ready=1)
    # auto negotiates 2026-07-28 with this upstream: the input_required bridge is what answers then.
    assert gw.readyz()["upstreams"]["up"]["protocol"] == ("2026-07-28" if era == "auto" else "2025-11-25")

    async def sampling(context, params) -> CreateMessageResult:
        prompt = params.messages[0].content.text
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=f"sampled:{prompt}"), model="m"
        )

    async def elicitation(context, params) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "octocat"})

    async def roots(context) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri="file:///work", name="work")])

    async with connect(
        gw.url, sampling_callback=sampling, elicitation_callback=elicitation, list_roots_callback=roots
    ) as client:
        sampled = await client.call_tool("up__sample", {"prompt": "hello"})
        assert "sampled:hello" in text_of(sampled)
        elicited = json.loads(text_of(await client.call_tool("up__elicit", {"message": "who?"})))
        assert elicited["action"] == "accept" and elicited["content"] == {"name": "octocat"}
        listed = json.loads(text_of(await client.call_tool("up__roots", {})))
        assert listed["roots"][0]["uri"] == "file:///work"


async def test_a_client_without_the_capability_is_never_asked(upstreams, gateway):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, "2025-11-25")}}, upstreams_ready=1)
    async with connect(gw.url) as client:  # declares no sampling capability
        result = await client.call_tool("up__sample", {"prompt": "hello"})
        assert result.is_error
        assert "sampling" in text_of(result)


@pytest.mark.parametrize("era", ERAS)
async def test_log_messages_are_relayed_on_the_call_stream(upstreams, gateway, era):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, era)}}, upstreams_ready=1)
    logs: list[str] = []

    async def on_log(params) -> None:
        logs.append(str(params.data))

    async with connect(gw.url, logging_callback=on_log) as client:
        await client.set_logging_level("info")
        await client.call_tool("up__log", {"message": "hello from upstream"})
    assert any("hello from upstream" in entry for entry in logs)


@pytest.mark.parametrize("era", ERAS)
async def test_client_cancellation_cancels_the_upstream_call(upstreams, gateway, tmp_path, era):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "0", "--record", str(record))
    gw = gateway({"upstreams": {"up": _http(url, era)}}, upstreams_ready=1)
    async with connect(gw.url) as client:
        with anyio.move_on_after(0.7):
            await client.call_tool("up__hang", {})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(r.get("event") == "cancelled" for r in read_records(record)):
                break
            await anyio.sleep(0.1)
        assert any(r.get("event") == "cancelled" and r.get("tool") == "hang" for r in read_records(record))
        # The session is still usable afterwards.
        assert not (await client.call_tool("up__log", {"message": "still here"})).is_error


async def test_stdio_upstream_pushes_reach_the_client(gateway):
    gw = gateway({"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "0")}}, upstreams_ready=1)

    async def sampling(context, params) -> CreateMessageResult:
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="from-client"), model="m")

    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(gw.url, sampling_callback=sampling) as client:
        assert "from-client" in text_of(await client.call_tool("box__sample", {"prompt": "x"}))
        await client.call_tool("box__sleep", {"seconds": 0.3}, progress_callback=on_progress)
    assert seen
