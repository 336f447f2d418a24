"""Refused requests naming huge, distinct targets must not stay in the gateway's memory: the policy's
decision cache is keyed on what clients send, so it is bounded in key size and in bytes. Measured on
a real gateway process by its resident set size."""

from __future__ import annotations

import httpx
import pytest

from tests.support.wire import ACCEPT, initialize_body

LEGACY = "2025-11-25"


def _rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - read at once
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    ("uri_chars", "requests", "refusal"),
    [
        (2 * 1024 * 1024, 60, "resource URI longer than 8192 characters"),  # refused before any decision
        (8000, 3000, "Resource not found"),  # the longest URIs decided by the policy: digests in its cache
    ],
)
def test_many_refused_requests_with_huge_distinct_uris_keep_the_gateway_small(
    upstreams, gateway, tmp_path, uri_chars, requests, refusal
):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "all.yaml").write_text(
        "tenants: ['*']\ndefault: deny\nrules:\n  - {name: tools-only, effect: allow, targets: {tools: ['*']}}\n"
    )
    _, url = upstreams("--name", "up", "--tools", "1", "--resources", "1")
    gw = gateway(
        {"policies": {"dir": str(policies)}, "upstreams": {"up": {"transport": "streamable_http", "url": url}}},
        upstreams_ready=1,
        extra_args=("--log-level", "warning"),  # each denial is an audit line naming its 2 MB target
    )
    with httpx.Client(timeout=30) as client:
        sid = client.post(gw.url, json=initialize_body(), headers=ACCEPT).headers["mcp-session-id"]
        session = {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": LEGACY}

        def read(index: int) -> httpx.Response:
            uri = f"test://up__{index:08d}" + "x" * uri_chars
            body = {"jsonrpc": "2.0", "id": index, "method": "resources/read", "params": {"uri": uri}}
            return client.post(gw.url, json=body, headers=session)

        for index in range(5):  # warm up: buffers and allocator arenas for 2 MB requests
            read(index)
        before = _rss_mib(gw.proc.pid)
        for index in range(5, 5 + requests):
            refused = read(index)
            assert refused.status_code == 200 and refused.json()["error"]["message"].startswith(refusal)
        after = _rss_mib(gw.proc.pid)
    grown = after - before
    print(f"RSS {before:.0f} MiB -> {after:.0f} MiB (+{grown:.0f} MiB) after {requests} refused URIs of {uri_chars}")
    assert grown < 20, (before, after)  # each kept URI would add its size: +120 MiB and +24 MiB
