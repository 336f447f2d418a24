"""The HTTP front door at the wire level, handshake era: sessions, bad input, DNS rebinding, draining."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

from tests.support.processes import scripted_stdio_args
from tests.support.wire import ACCEPT, initialize_body

INIT = initialize_body()
HEADERS = ACCEPT


def open_session(url: str) -> dict[str, str]:
    response = httpx.post(url, json=INIT, headers=HEADERS)
    assert response.status_code == 200
    assert response.json()["result"]["protocolVersion"] == "2025-11-25"
    headers = {**HEADERS, "mcp-session-id": response.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    assert (
        httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers).status_code
        == 202
    )
    return headers


@pytest.fixture
def box(gateway):
    return gateway({"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")}}, upstreams_ready=1)


def test_bad_input_gets_the_right_status_and_json_rpc_error(box):
    url = box.url
    parse = httpx.post(url, content=b"{not json", headers=HEADERS)
    assert parse.status_code == 400 and parse.json()["error"]["code"] == -32700
    batch = httpx.post(url, json=[INIT], headers=HEADERS)
    assert batch.status_code == 400 and batch.json()["error"]["code"] == -32600
    no_session = httpx.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=HEADERS)
    assert no_session.status_code == 400 and "session" in no_session.json()["error"]["message"].lower()
    unknown = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers={**HEADERS, "mcp-session-id": "forged"}
    )
    assert unknown.status_code == 404
    headers = open_session(url)
    bad_params = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": [1]}, headers=headers
    )
    assert bad_params.status_code == 400 and bad_params.json()["error"]["code"] == -32602
    no_method = httpx.post(url, json={"jsonrpc": "2.0", "id": 5, "method": "no/such"}, headers=headers)
    assert no_method.json()["error"]["code"] == -32601
    bad_version = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 6, "method": "ping"},
        headers={**headers, "mcp-protocol-version": "1999-01-01"},
    )
    assert bad_version.status_code == 400
    # After all that, the session still works.
    listed = httpx.post(url, json={"jsonrpc": "2.0", "id": 7, "method": "tools/list"}, headers=headers)
    assert "box__tool_0" in {t["name"] for t in listed.json()["result"]["tools"]}


def test_delete_ends_a_session(box):
    headers = open_session(box.url)
    assert httpx.delete(box.url, headers=headers).status_code == 200
    after = httpx.post(box.url, json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=headers)
    assert after.status_code == 404


def test_dns_rebinding_is_refused(box):
    port = box.port
    evil_host = httpx.post(box.url, json=INIT, headers={**HEADERS, "host": "evil.example:80"})
    assert evil_host.status_code == 421
    evil_origin = httpx.post(box.url, json=INIT, headers={**HEADERS, "origin": "http://evil.example"})
    assert evil_origin.status_code == 403
    good_origin = httpx.post(box.url, json=INIT, headers={**HEADERS, "origin": f"http://localhost:{port}"})
    assert good_origin.status_code == 200


def test_idle_sessions_expire(gateway):
    gw = gateway(
        {
            "server": {"session_idle_timeout": 1},
            "upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")},
        },
        upstreams_ready=1,
    )
    headers = open_session(gw.url)
    assert httpx.post(gw.url, json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=headers).status_code == 200
    time.sleep(1.5)
    assert httpx.post(gw.url, json={"jsonrpc": "2.0", "id": 3, "method": "ping"}, headers=headers).status_code == 404


def test_sigterm_drains_calls_in_flight_and_stops_stdio_upstreams(gateway):
    marker = f"drain-{os.getpid()}-{time.monotonic_ns()}"
    gw = gateway({"upstreams": {"box": scripted_stdio_args("--name", marker, "--tools", "1")}}, upstreams_ready=1)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0
    headers = open_session(gw.url)
    outcome: dict[str, httpx.Response] = {}

    def slow_call() -> None:
        outcome["slow"] = httpx.post(
            gw.url,
            json={
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "box__sleep", "arguments": {"seconds": 1.5}},
            },
            headers=headers,
            timeout=30,
        )

    thread = threading.Thread(target=slow_call)
    thread.start()
    time.sleep(0.5)
    gw.proc.popen.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.HTTPError):  # new connections are refused while draining
        httpx.post(gw.url, json=INIT, headers=HEADERS, timeout=2)
    thread.join(30)
    slow = outcome["slow"]
    assert slow.status_code == 200 and slow.json()["result"]["isError"] is False
    assert gw.proc.popen.wait(20) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0


def test_workers_serve_any_session_without_sticky_routing(gateway):
    gw = gateway(
        {"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1", "--no-special-tools")}},
        upstreams_ready=1,
        extra_args=("--workers", "2"),
    )
    # Both workers connect their own upstream pool: wait until every /readyz answer is ready.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answers = [httpx.get(f"http://127.0.0.1:{gw.port}/readyz").json() for _ in range(6)]
        if all(a["upstreams"]["box"]["state"] == "ready" for a in answers):
            break
        time.sleep(0.2)
    headers = open_session(gw.url)
    statuses = []
    for i in range(40):  # a new connection each time: the kernel spreads them over both workers
        response = httpx.post(
            gw.url,
            json={
                "jsonrpc": "2.0",
                "id": i,
                "method": "tools/call",
                "params": {"name": "box__tool_0", "arguments": {"i": i}},
            },
            headers=headers,
        )
        statuses.append((response.status_code, "result" in response.json()))
    assert statuses == [(200, True)] * 40
