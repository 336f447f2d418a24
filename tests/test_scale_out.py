"""Two gateway processes sharing a session key and a real Redis: no request needs a particular process.

Each test sends some requests of one client to process A and others to process B, the way a load
balancer without sticky sessions would.
"""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from mcp_gateway.catalog.sync import COALESCE_SECONDS
from tests.support.processes import scripted_stdio_args
from tests.support.wire import ACCEPT, final_message, initialize_body, modern_post

pytestmark = pytest.mark.anyio

LEGACY = "2025-11-25"
SECRET = "a shared secret for both processes"


def _pair(gateway, redis_state, upstreams_config):
    config = {"server": {"session_secret": SECRET}, "state": redis_state, "upstreams": upstreams_config}
    return gateway(config, upstreams_ready=1), gateway(config, upstreams_ready=1)


def _initialize(url: str, capabilities: dict | None = None) -> dict[str, str]:
    response = httpx.post(url, json=initialize_body(capabilities), headers=ACCEPT)
    assert response.status_code == 200
    headers = {**ACCEPT, "mcp-session-id": response.headers["mcp-session-id"], "mcp-protocol-version": LEGACY}
    assert (
        httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers).status_code
        == 202
    )
    return headers


def _call(name: str, arguments: dict, request_id: int = 2) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def _get_stream_while(url: str, headers: dict[str, str], action, expected: int) -> list[dict]:
    """Hold a GET stream on `url`, run `action()`, and return the first `expected` messages it carried."""
    received: list[dict] = []
    async with httpx.AsyncClient(timeout=15) as client, client.stream("GET", url, headers=headers) as stream:
        assert stream.status_code == 200

        async def read() -> None:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    received.append(json.loads(line[5:]))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            await anyio.sleep(0.3)
            await action()
            with anyio.fail_after(5):
                while len(received) < expected:
                    await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()
    return received


async def test_a_session_opened_on_one_process_is_served_and_ended_by_the_other(upstreams, gateway, redis_state):
    _, url = upstreams("--name", "up", "--tools", "1")
    a, b = _pair(gateway, redis_state, {"up": {"transport": "streamable_http", "url": url}})
    headers = _initialize(a.url)
    on_b = httpx.post(b.url, json=_call("up__tool_0", {"n": 1}), headers=headers)
    assert on_b.status_code == 200
    assert json.loads(final_message(on_b)["result"]["content"][0]["text"])["arguments"] == {"n": 1}
    # The log level set through B applies to calls served by A.
    level = {"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "error"}}
    assert httpx.post(b.url, json=level, headers=headers).status_code == 200
    await anyio.sleep(0.3)
    logged = httpx.post(a.url, json=_call("up__log", {"message": "info line"}, 4), headers=headers)
    assert "notifications/message" not in logged.text  # info is below the session's level: filtered on A
    # DELETE through A ends the session on B as well.
    assert httpx.delete(a.url, headers=headers).status_code == 200
    await anyio.sleep(0.3)
    assert httpx.post(b.url, json=_call("up__tool_0", {}, 5), headers=headers).status_code == 404


async def test_list_changed_reaches_a_get_stream_held_by_the_other_process(gateway, redis_state):
    # stdio: each process runs its own copy of the upstream, so only A's copy changes and only A hears
    # of it from the upstream; B's client must learn it through the state backend.
    a, b = _pair(gateway, redis_state, {"box": scripted_stdio_args("--name", "box", "--tools", "1")})
    headers = _initialize(a.url)

    async def add_tool_on_a() -> None:
        async with httpx.AsyncClient(timeout=15) as client:
            added = await client.post(a.url, json=_call("box__add_tool", {}), headers=headers)
        assert added.status_code == 200

    received = await _get_stream_while(b.url, headers, add_tool_on_a, 1)
    assert received[0]["method"] == "notifications/tools/list_changed"


async def test_a_request_to_the_client_answered_through_the_other_process_completes(upstreams, gateway, redis_state):
    _, url = upstreams("--name", "up", "--tools", "0")
    a, b = _pair(gateway, redis_state, {"up": {"transport": "streamable_http", "url": url, "protocol": LEGACY}})
    headers = _initialize(a.url, {"elicitation": {}})
    final: list[dict] = []
    async with (
        httpx.AsyncClient(timeout=15) as client,
        client.stream("POST", a.url, json=_call("up__elicit", {"message": "who?"}), headers=headers) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("method") == "elicitation/create":
                answer = {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "result": {"action": "accept", "content": {"name": "via B"}},
                }
                assert (await client.post(b.url, json=answer, headers=headers)).status_code == 202
            elif "result" in message:
                final.append(message)
                break
    assert json.loads(final[0]["result"]["content"][0]["text"]) == {"action": "accept", "content": {"name": "via B"}}


async def test_an_input_required_retry_reaching_the_other_process_resumes_the_parked_call(
    upstreams, gateway, redis_state
):
    _, url = upstreams("--name", "up", "--tools", "0")
    a, b = _pair(gateway, redis_state, {"up": {"transport": "streamable_http", "url": url, "protocol": LEGACY}})
    capabilities = {"elicitation": {}}
    first = final_message(
        modern_post(
            a.url, "tools/call", {"name": "up__elicit", "arguments": {"message": "who?"}}, capabilities=capabilities
        )
    )["result"]
    assert first["resultType"] == "input_required"
    [key] = first["inputRequests"]
    retry = {
        "name": "up__elicit",
        "arguments": {"message": "who?"},
        "inputResponses": {key: {"action": "accept", "content": {"name": "resumed on B"}}},
        "requestState": first["requestState"],
    }
    done = final_message(modern_post(b.url, "tools/call", retry, capabilities=capabilities, request_id=2))["result"]
    assert done["resultType"] == "complete"
    assert json.loads(done["content"][0]["text"])["content"] == {"name": "resumed on B"}


async def test_workers_share_notifications_through_redis(gateway, redis_state):
    # Each worker runs its own copy of the stdio upstream: whichever worker serves `add_tool`, the
    # notification must reach the GET stream, wherever that stream is held.
    config = {"state": redis_state, "upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")}}
    gw = gateway(config, upstreams_ready=1, extra_args=("--workers", "2"))
    headers = _initialize(gw.url)
    calls = 6

    async def add_tools() -> None:
        for n in range(calls):
            # A fresh connection per call, so the kernel spreads them over the workers.
            async with httpx.AsyncClient(timeout=15) as fresh:
                added = await fresh.post(gw.url, json=_call("box__add_tool", {}, 10 + n), headers=headers)
            assert added.status_code == 200
            # Past the coalescing window, so each change is its own notification.
            await anyio.sleep(COALESCE_SECONDS * 2.5)

    received = await _get_stream_while(gw.url, headers, add_tools, calls)
    assert [m["method"] for m in received] == ["notifications/tools/list_changed"] * calls
