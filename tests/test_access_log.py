"""The access log: one JSON line per request, with who, what, where, how it ended and how long it took,
and never a secret."""

from __future__ import annotations

import hashlib
import json
import time

from tests.support.wire import modern_post

KEY = "mgw_access_log_test_key"


def test_each_request_is_one_json_line_without_secrets(upstreams, gateway, tmp_path):
    log_path = tmp_path / "access.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1")
    gw = gateway(
        {
            "auth": {
                "api_keys": [{"sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tenant": "eng", "subject": "ci-bot"}]
            },
            "telemetry": {"access_log": str(log_path)},
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
    )
    headers = {"x-api-key": KEY}
    modern_post(gw.url, "tools/list", headers=headers)
    modern_post(gw.url, "tools/call", {"name": "up__tool_0", "arguments": {"secret": "s3cr3t"}}, headers=headers)
    modern_post(gw.url, "tools/call", {"name": "up__nope", "arguments": {}}, headers=headers)
    modern_post(gw.url, "tools/call", {"name": "up__tool_0", "arguments": {}}, headers={"x-api-key": "wrong"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not log_path.exists() or len(log_path.read_text().splitlines()) < 4):
        time.sleep(0.05)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(x["method"], x["target"], x["status"], x["error"]) for x in lines] == [
        ("tools/list", None, "ok", None),
        ("tools/call", "up__tool_0", "ok", None),
        ("tools/call", "up__nope", "error", -32602),
        (None, None, "refused", 401),  # refused at the door, before it was a call
    ]
    assert lines[3]["reason"] == "invalid_token" and lines[3]["http"] == "POST"
    call = lines[1]
    assert call["tenant"] == "eng" and call["subject"] == "ci-bot" and call["upstream"] == "up"
    assert call["protocol"] == "2026-07-28" and call["duration_ms"] > 0
    text = log_path.read_text()
    assert KEY not in text and "s3cr3t" not in text
