"""Every route is behind the same door: Host and Origin are checked for /mcp, /v1/* and the operator's
endpoints alike, a JSON endpoint refuses what a browser may POST cross-site without a preflight, and with
`server.admin_token` the metrics and readiness details are the operator's only."""

from __future__ import annotations

import httpx

from tests.support.processes import free_port

CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


def _config(upstream_url: str, **server: object) -> dict:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    return {
        "server": server,
        "upstreams": {"up": {"transport": "streamable_http", "url": upstream_url}},
        "llm": {"backends": {"b": {"provider": "openai", "base_url": closed, "connect_timeout": 1}}},
    }


def test_every_route_checks_host_origin_and_simple_content_types(gateway, upstreams) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    gw = gateway(_config(url), upstreams_ready=1)
    base = f"http://127.0.0.1:{gw.port}"
    with httpx.Client(timeout=10) as client:
        for path in ("/mcp", "/v1/chat/completions", "/v1/models", "/metrics", "/readyz", "/healthz"):
            refused = client.get(base + path, headers={"host": "evil.example"})
            assert refused.status_code == 421, path  # DNS rebinding, on every route
        evil = {"origin": "http://evil.example", "content-type": "text/plain"}
        assert client.post(base + "/v1/chat/completions", content=CHAT, headers=evil).status_code == 403
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            for path in ("/mcp", "/v1/chat/completions", "/v1/messages"):
                answer = client.post(base + path, content=CHAT, headers={"content-type": kind})
                assert answer.status_code == 415, (path, kind, answer.text)
        # A page on the gateway's own origin may not send a body without a type either.
        own = {"origin": base}
        assert client.post(base + "/v1/chat/completions", content=CHAT, headers=own).status_code == 415
        # What real clients send is served.
        listed = client.get(base + "/v1/models")
        assert listed.status_code == 200


def test_the_admin_token_guards_metrics_and_readiness_details(gateway, upstreams) -> None:
    _, url = upstreams("--name", "up", "--tools", "1")
    gw = gateway({k: v for k, v in _config(url, admin_token="s3cret-admin").items() if k != "llm"}, upstreams_ready=1)
    base = f"http://127.0.0.1:{gw.port}"
    with httpx.Client(timeout=10) as client:
        assert client.get(base + "/metrics").status_code == 401
        assert client.get(base + "/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get(base + "/metrics", headers={"authorization": "Bearer s3cret-admin"}).status_code == 200
        bare = client.get(base + "/readyz")
        assert bare.status_code in (200, 503) and set(bare.json()) == {"ready"}
        full = client.get(base + "/readyz", headers={"authorization": "Bearer s3cret-admin"}).json()
        assert "upstreams" in full and "state" in full
