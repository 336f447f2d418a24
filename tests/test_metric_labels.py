"""Metric labels never come from what a client spells: tool and method names a caller sends become labels
only when the catalog or the method table knows them, so refused requests naming anything cannot grow
/metrics (a scrape of it once reached 680 MB and stalled the gateway)."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.wire import ACCEPT, initialize_body, modern_post

BIG = "x" * 1_000_000


def test_refused_requests_naming_anything_leave_metrics_small(gateway, upstreams, tmp_path) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "none.yaml").write_text("tenants: ['*']\ndefault: deny\n")  # this tenant may use nothing
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url}}, "policies": {"dir": str(policies)}},
        upstreams_ready=1,
    )
    with httpx.Client(timeout=30) as client:  # the handshake era: no routing headers to cap the names
        sid = client.post(gw.url, json=initialize_body(), headers=ACCEPT).headers["mcp-session-id"]
        session = {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        for i in range(20):
            for method, params in (
                ("tools/call", {"name": f"{i}{BIG}", "arguments": {}}),
                ("prompts/get", {"name": f"p{i}{BIG}"}),
                (f"made/up/{i}{BIG[:1000]}", {}),
            ):
                body = {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                assert client.post(gw.url, content=json.dumps(body), headers=session).status_code == 200
            modern_post(gw.url, "tools/call", {"name": "up__tool_0", "arguments": {}})  # known, but refused
    text = httpx.get(f"http://127.0.0.1:{gw.port}/metrics", timeout=30).text
    assert len(text) < 200_000, len(text)
    labels = [
        value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for value in sample.labels.values()
    ]
    assert max(len(value) for value in labels) < 200
    tools = {
        sample.labels.get("gen_ai_tool_name")
        for family in text_string_to_metric_families(text)
        if family.name == "mcp_server_operation_duration_seconds"
        for sample in family.samples
    }
    assert tools <= {"", "up__tool_0"}  # the catalog's name, nothing a client spelled
    methods = {
        sample.labels.get("mcp_method_name")
        for family in text_string_to_metric_families(text)
        if family.name == "mcp_server_operation_duration_seconds"
        for sample in family.samples
    }
    assert methods == {"initialize", "tools/call", "prompts/get", "_OTHER"}
    assert json.dumps(labels).count("made/up") == 0
