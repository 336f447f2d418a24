"""Raw HTTP requests in either protocol era, for wire-level tests (exact statuses, headers, codes)."""

from __future__ import annotations

import json
from typing import Any

import httpx

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
NAME_KEY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def initialize_body(capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    """A handshake-era `initialize` request."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }


def envelope(capabilities: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities if capabilities is not None else {},
        "io.modelcontextprotocol/clientInfo": {"name": "wire-test", "version": "1"},
        **extra,
    }


def modern_headers(method: str, params: dict[str, Any]) -> dict[str, str]:
    headers = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": method}
    key = NAME_KEY.get(method)
    if key and isinstance(params.get(key), str):
        headers["mcp-name"] = params[key]
    return headers


def modern_post(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    capabilities: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    request_id: Any = 1,
    meta: dict[str, Any] | None = None,
    timeout: float = 30,
) -> httpx.Response:
    """A well-formed 2026-07-28 request; `headers` overrides (a None value removes a header)."""
    params = dict(params or {})
    params["_meta"] = meta if meta is not None else envelope(capabilities)
    sent = modern_headers(method, params)
    for key, value in (headers or {}).items():
        if value is None:
            sent.pop(key, None)
        else:
            sent[key] = value
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return httpx.post(url, content=json.dumps(body), headers=sent, timeout=timeout)


def final_message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC response of a POST, whether it came as JSON or as the last SSE event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [
            json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip()
        ]
        return [e for e in events if "id" in e and ("result" in e or "error" in e)][-1]
    return response.json()
