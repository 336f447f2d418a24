"""The policy and the upstream agree on what a resource URI names: every spelling of a URI is decided and
forwarded as its one canonical form (RFC 3986 normalisation), and a URI whose meaning depends on how it is
decoded is refused, for reads, subscriptions and completions alike."""

from __future__ import annotations

import httpx
import yaml

from tests.support.processes import read_records
from tests.support.wire import ACCEPT, initialize_body, modern_post

POLICY = {
    "tenants": ["*"],
    "default": "deny",
    "rules": [
        {"name": "public", "effect": "allow", "targets": {"resources": ["up://up__tpl0/pub/*"]}},
        {"name": "no-secrets", "effect": "deny", "targets": {"resources": ["up://up__tpl0/pub/secret*"]}},
    ],
}
SNEAKY = [
    "up://up__tpl0/pub/../private/key",
    "up://up__tpl0/pub/%2e%2e/private/key",
    "up://up__tpl0/pub/%2E%2E/private/key",
    "up://up__tpl0/pub/x/../../private/key",
    "up://up__tpl0/pub/%73ecret",
    "up://up__tpl0/pub/./secret",
    "up://up__tpl0/pub/x/../secret",
    "UP://up__tpl0/pub/secret",
]
AMBIGUOUS = ["up://up__tpl0/pub/..%2Fprivate/key", "up://up__tpl0/pub/..%5Cprivate", "up://up__tpl0/pub\\..\\private"]


def test_every_spelling_is_decided_and_forwarded_canonically(gateway, upstreams, tmp_path) -> None:
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--templates", "1", "--record", str(record))
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(yaml.safe_dump(POLICY))
    gw = gateway(
        {"upstreams": {"up": {"transport": "streamable_http", "url": url}}, "policies": {"dir": str(policies)}},
        upstreams_ready=1,
    )
    for uri in SNEAKY + AMBIGUOUS:
        refused = modern_post(gw.url, "resources/read", {"uri": uri}).json()
        assert refused["error"]["code"] == -32602, (uri, refused)
    served = modern_post(gw.url, "resources/read", {"uri": "up://up__tpl0/pub/a/../b"})
    assert served.json()["result"]["contents"][0]["uri"] == "up://up__tpl0/pub/b"
    with httpx.Client(timeout=10) as client:  # the handshake era: subscriptions and completions too
        sid = client.post(gw.url, json=initialize_body(), headers=ACCEPT).headers["mcp-session-id"]
        session = {**ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        for uri in SNEAKY:
            for method, params in (
                ("resources/subscribe", {"uri": uri}),
                ("resources/read", {"uri": uri}),
                (
                    "completion/complete",
                    {"ref": {"type": "ref/resource", "uri": uri}, "argument": {"name": "id", "value": "a"}},
                ),
            ):
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                answer = client.post(gw.url, json=body, headers=session).json()
                refused_or_empty = "error" in answer or answer["result"].get("completion", {}).get("values") == []
                assert refused_or_empty, (method, uri, answer)
    reads = [r["uri"] for r in read_records(record) if r.get("method") == "resources/read"]
    assert reads == ["up://tpl0/pub/b"]  # only the allowed one, in its canonical spelling
    assert not [r for r in read_records(record) if r.get("method") in ("resources/subscribe", "completion/complete")]
