"""Messages in flight across every client/upstream era pair: progress, logs, sampling, elicitation,
roots and cancellation, with a real `mcp` SDK client and a real upstream server.

Clients speak the handshake era (`initialize`, a session) or 2026-07-28 (stateless); upstreams are
pinned to the handshake era or auto-negotiate 2026-07-28. The four pairs exercise, in turn: relayed
pushes (legacy/legacy), the input_required bridge driving a legacy client (legacy client, modern
upstream), parked calls answered by MRTR retries (modern client, legacy upstream) and MRTR passthrough
(modern/modern).
"""

from __future__ import annotations

import json
import sys
import time

import anyio
import pytest
from mcp_types import CreateMessageResult, ElicitResult, ListRootsResult, Root, TextContent

from tests.support.client import CLIENT_ERAS, connect, text_of
from tests.support.processes import read_records, scripted_stdio_args

pytestmark = pytest.mark.anyio

UPSTREAM_ERAS = ["2025-11-25", "auto"]
PAIRS = [(client, upstream) for client in CLIENT_ERAS for upstream in UPSTREAM_ERAS]
PAIR_IDS = [f"{client}-client-{'legacy' if up == '2025-11-25' else 'modern'}-upstream" for client, up in PAIRS]


def _http(url: str, era: str) -> dict:
    return {"transport": "streamable_http", "url": url, "protocol": era}


async def _sampling(context, params) -> CreateMessageResult:
    prompt = params.messages[0].content.text
    return CreateMessageResult(role="assistant", content=TextContent(type="text", text=f"sampled:{prompt}"), model="m")


async def _elicitation(context, params) -> ElicitResult:
    return ElicitResult(action="accept", content={"name": "octocat"})


async def _roots(context) -> ListRootsResult:
    return ListRootsResult(roots=[Root(uri="file:///work", name="work")])


@pytest.mark.parametrize(("client_era", "upstream_era"), PAIRS, ids=PAIR_IDS)
async def test_tools_are_listed_and_called_with_progress(upstreams, gateway, client_era, upstream_era):
    _, url = upstreams("--name", "up", "--tools", "2")
    gw = gateway({"upstreams": {"up": _http(url, upstream_era)}}, upstreams_ready=1)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(gw.url, client_era) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"up__tool_0", "up__tool_1", "up__sleep"} <= names
        echoed = json.loads(text_of(await client.call_tool("up__tool_1", {"x": 1})))
        assert echoed["tool"] == "tool_1" and echoed["arguments"] == {"x": 1}
        result = await client.call_tool("up__sleep", {"seconds": 0.5}, progress_callback=on_progress)
        assert not result.is_error
    assert len(seen) >= 3 and seen == sorted(seen)


@pytest.mark.parametrize(("client_era", "upstream_era"), PAIRS, ids=PAIR_IDS)
async def test_sampling_elicitation_and_roots_are_answered_by_the_calling_client(
    upstreams, gateway, client_era, upstream_era
):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, upstream_era)}}, upstreams_ready=1)
    assert gw.readyz()["upstreams"]["up"]["protocol"] == ("2026-07-28" if upstream_era == "auto" else "2025-11-25")
    async with connect(
        gw.url,
        client_era,
        sampling_callback=_sampling,
        elicitation_callback=_elicitation,
        list_roots_callback=_roots,
    ) as client:
        sampled = await client.call_tool("up__sample", {"prompt": "hello"})
        assert "sampled:hello" in text_of(sampled)
        elicited = json.loads(text_of(await client.call_tool("up__elicit", {"message": "who?"})))
        assert elicited["action"] == "accept" and elicited["content"] == {"name": "octocat"}
        listed = json.loads(text_of(await client.call_tool("up__roots", {})))
        assert listed["roots"][0]["uri"] == "file:///work"


@pytest.mark.parametrize(("client_era", "upstream_era"), PAIRS, ids=PAIR_IDS)
async def test_a_client_without_the_capability_is_never_asked(upstreams, gateway, client_era, upstream_era):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, upstream_era)}}, upstreams_ready=1)
    async with connect(gw.url, client_era) as client:  # declares no sampling capability
        try:
            result = await client.call_tool("up__sample", {"prompt": "hello"})
        except Exception as exc:  # a modern upstream may refuse with -32021 (missing capability)
            assert "sampling" in str(getattr(exc, "data", "")) + str(exc)
        else:
            assert result.is_error
            assert "sampling" in text_of(result)


@pytest.mark.parametrize(("client_era", "upstream_era"), PAIRS, ids=PAIR_IDS)
async def test_log_messages_are_relayed_on_the_call_stream(upstreams, gateway, client_era, upstream_era):
    _, url = upstreams("--name", "up", "--tools", "0")
    gw = gateway({"upstreams": {"up": _http(url, upstream_era)}}, upstreams_ready=1)
    logs: list[str] = []

    async def on_log(params) -> None:
        logs.append(str(params.data))

    if client_era == "legacy":
        async with connect(gw.url, client_era, logging_callback=on_log) as client:
            await client.set_logging_level("info")
            await client.call_tool("up__log", {"message": "hello from upstream"})
    else:
        # 2026-07-28: the level travels with each request, and without one no log lines are sent.
        async with connect(gw.url, client_era, logging_callback=on_log) as client:
            await client.call_tool("up__log", {"message": "unasked"})
        assert logs == []
        async with connect(gw.url, client_era, logging_callback=on_log, log_level="info") as client:
            await client.call_tool("up__log", {"message": "hello from upstream"})
    assert any("hello from upstream" in entry for entry in logs)


@pytest.mark.parametrize(("client_era", "upstream_era"), PAIRS, ids=PAIR_IDS)
async def test_client_cancellation_cancels_the_upstream_call(upstreams, gateway, tmp_path, client_era, upstream_era):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "0", "--record", str(record))
    gw = gateway({"upstreams": {"up": _http(url, upstream_era)}}, upstreams_ready=1)
    async with connect(gw.url, client_era) as client:
        with anyio.move_on_after(0.7):
            await client.call_tool("up__hang", {})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(r.get("event") == "cancelled" for r in read_records(record)):
                break
            await anyio.sleep(0.1)
        assert any(r.get("event") == "cancelled" and r.get("tool") == "hang" for r in read_records(record))
        # The client is still served afterwards.
        assert not (await client.call_tool("up__log", {"message": "still here"})).is_error


@pytest.mark.parametrize("client_era", CLIENT_ERAS)
async def test_stdio_upstream_pushes_reach_the_client(gateway, client_era):
    gw = gateway({"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "0")}}, upstreams_ready=1)

    async def sampling(context, params) -> CreateMessageResult:
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="from-client"), model="m")

    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(gw.url, client_era, sampling_callback=sampling) as client:
        assert "from-client" in text_of(await client.call_tool("box__sample", {"prompt": "x"}))
        await client.call_tool("box__sleep", {"seconds": 0.3}, progress_callback=on_progress)
    assert seen


async def test_a_legacy_upstreams_log_level_follows_the_most_verbose_client(upstreams, gateway, tmp_path):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "0", "--record", str(record))
    gw = gateway({"upstreams": {"up": _http(url, "2025-11-25")}}, upstreams_ready=1)

    def set_levels() -> int:
        return sum(1 for r in read_records(record) if r.get("method") == "logging/setLevel")

    async with connect(gw.url, "modern", log_level="warning") as client:
        await client.call_tool("up__log", {"message": "a"})
    assert set_levels() == 1
    async with connect(gw.url, "legacy") as client:
        await client.set_logging_level("error")  # less verbose than what the upstream already sends
        await client.call_tool("up__log", {"message": "b"})
    assert set_levels() == 1
    async with connect(gw.url, "modern", log_level="debug") as client:
        await client.call_tool("up__log", {"message": "c"})
    assert set_levels() == 2


async def test_an_upstream_closing_the_calls_stream_early_is_resumed_with_last_event_id(gateway):
    """SSE polling (SEP-1699): the project's everything-server closes its response stream mid-call
    (`test_reconnection`); the gateway resumes it with Last-Event-ID, and the client sees the log lines
    from before and after the break and the result, as if nothing happened."""
    from tests.support.processes import SUPPORT, Proc, free_port

    proc = Proc(
        [sys.executable, str(SUPPORT / "everything_server.py"), "--transport", "http", "--port", str(free_port())]
    )
    try:
        url = proc.wait_for_line("READY").split()[1]
        gw = gateway({"upstreams": {"ev": _http(url, "2025-11-25")}}, upstreams_ready=1)
        logs: list[str] = []

        async def on_log(params) -> None:
            logs.append(str(params.data))

        async with connect(gw.url, "legacy", logging_callback=on_log) as client:
            await client.set_logging_level("info")
            result = await client.call_tool("ev__test_reconnection", {})
        assert not result.is_error and text_of(result) == "Reconnection test completed"
        assert [entry for entry in logs if "disconnect" in entry or "reconnect" in entry] == [
            "Before disconnect",
            "After reconnect",
        ]
    finally:
        proc.kill()
