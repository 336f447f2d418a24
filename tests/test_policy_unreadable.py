"""A gateway whose policy directory cannot be read for a while (here: the process is out of file
descriptors, EMFILE) keeps its last good policy, says so on /readyz, and recovers by itself."""

from __future__ import annotations

import resource
import time

import httpx

from tests.support.wire import envelope, modern_headers

POLICY = (
    "tenants: ['*']\ndefault: allow\nrules:\n  - {name: no-tool-1, effect: deny, targets: {tools: ['up__tool_1']}}\n"
)


def _policy(client: httpx.Client, port: int) -> dict:
    return client.get(f"http://127.0.0.1:{port}/readyz").json()["policy"]


def _until(predicate, client: httpx.Client, port: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = _policy(client, port)
        if predicate(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_readyz_reports_a_policy_directory_that_cannot_be_read_and_its_recovery(upstreams, gateway, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "all.yaml").write_text(POLICY)
    _, url = upstreams("--name", "up", "--tools", "2", "--no-special-tools")
    gw = gateway(
        {"policies": {"dir": str(policies)}, "upstreams": {"up": {"transport": "streamable_http", "url": url}}},
        upstreams_ready=1,
    )
    pid = gw.proc.pid
    params = {"_meta": envelope()}
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params}
    # One kept-alive connection, opened before the descriptors run out: it needs none of its own later.
    with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=1)) as client:
        assert _policy(client, gw.port)["ok"] is True
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))  # every new descriptor: EMFILE
        try:
            failed = _until(lambda status: not status["ok"], client, gw.port)
            retried = _until(lambda status: status["retry_in"] > failed["retry_in"], client, gw.port)
            # The last good policy is still enforced meanwhile.
            tools = client.post(gw.url, json=listing, headers=modern_headers("tools/list", params)).json()
            assert {tool["name"] for tool in tools["result"]["tools"]} == {"up__tool_0"}
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        recovered = _until(lambda status: status["ok"], client, gw.port)
    assert "Too many open files" in failed["error"] and str(policies) in failed["error"]
    assert failed["rules"] == 1 and retried["failed_at"] == failed["failed_at"]
    assert recovered["rules"] == 1 and recovered["loaded_at"] > failed["loaded_at"] and "error" not in recovered
    # Watching again: an edit applies.
    (policies / "all.yaml").write_text(POLICY.replace("up__tool_1", "up__tool_0"))
    with httpx.Client(timeout=10) as client:
        _until(lambda status: status["loaded_at"] > recovered["loaded_at"], client, gw.port)
        tools = client.post(gw.url, json=listing, headers=modern_headers("tools/list", params)).json()
    assert {tool["name"] for tool in tools["result"]["tools"]} == {"up__tool_1"}
