"""Refused requests naming huge, distinct targets must not stay in the gateway's memory: the policy's
decision cache is keyed on what clients send, so it is bounded in key size and in bytes. Measured on
a real gateway process by its resident set size."""

from __future__ import annotations

import httpx

from tests.support.wire import ACCEPT, initialize_body

LEGACY = "2025-11-25"
URI_CHARS = 2 * 1024 * 1024
REQUESTS = 60


def _rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - read at once
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_many_refused_requests_with_huge_distinct_uris_keep_the_gateway_small(upstreams, gateway, tmp_path):
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
            uri = f"test://up__{index:08d}" + "x" * URI_CHARS
            body = {"jsonrpc": "2.0", "id": index, "method": "resources/read", "params": {"uri": uri}}
            return client.post(gw.url, json=body, headers=session)

        for index in range(5):  # warm up: buffers and allocator arenas for 2 MB requests
            read(index)
        before = _rss_mib(gw.proc.pid)
        for index in range(5, 5 + REQUESTS):
            refused = read(index)
            assert refused.status_code == 200 and refused.json()["error"]["message"] == "Resource not found"
        after = _rss_mib(gw.proc.pid)
    grown = after - before
    print(f"RSS {before:.0f} MiB -> {after:.0f} MiB (+{grown:.0f} MiB) after {REQUESTS} refused 2 MiB URIs")
    assert grown < 40, (before, after)  # each kept URI would add 2 MiB: +120 MiB
