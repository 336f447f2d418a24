"""The fastest reasonable upstream MCP server in Python: the benchmark's reference point.

A raw ASGI app under uvicorn (uvloop + httptools, no access log, no lifespan) speaking streamable HTTP
at `/mcp` in both protocol eras, minimally:

- handshake era (2025-11-25): `initialize` (sets `mcp-session-id`), `notifications/*` -> 202, `ping`,
  `tools/list`, `tools/call`; session ids are handed out but not checked (speed over strictness);
- modern era (2026-07-28): `server/discover`, and any request whose `params._meta` carries
  `io.modelcontextprotocol/protocolVersion` gets `"resultType": "complete"` in its result.

One tool, `echo`, returns its `text` argument. Answers are JSON, never SSE. Prints `READY <port>` on
stdout once listening (`--port 0` picks a free port).

    python bench/fast_upstream.py --port 19001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

import orjson
import uvicorn

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
META_VERSION = "io.modelcontextprotocol/protocolVersion"
SERVER_INFO = {"name": "bench-fast-upstream", "version": "1.0"}
ECHO_TOOL = {
    "name": "echo",
    "description": "Echo the text back.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}

_JSON = (b"content-type", b"application/json")
_EMPTY_202 = {"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


async def _read_body(receive: Any) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(request_id: Any, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def _result(request_id: Any, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # no lifespan (uvicorn runs with lifespan="off")
    if scope["path"] not in ("/mcp", "/mcp/"):
        await _send(send, 404, b'{"error":"not found"}')
        return
    http_method = scope["method"]
    if http_method == "DELETE":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send(_EMPTY_BODY)
        return
    if http_method != "POST":
        # No standalone GET stream: the gateway's legacy listener sees 405 and stops asking.
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [(b"allow", b"POST, DELETE"), (b"content-length", b"0")],
            }
        )
        await send(_EMPTY_BODY)
        return

    try:
        message = orjson.loads(await _read_body(receive))
    except orjson.JSONDecodeError:
        await _send(send, 400, _error(None, -32700, "Parse error"))
        return
    if not isinstance(message, dict):
        await _send(send, 400, _error(None, -32600, "Invalid Request"))
        return
    method = message.get("method")
    if method is None or "id" not in message:
        # A notification, or the client's answer to a request we never send: accepted.
        await send(_EMPTY_202)
        await send(_EMPTY_BODY)
        return
    request_id = message["id"]
    params = message.get("params") or {}
    meta = params.get("_meta")
    modern = isinstance(meta, dict) and meta.get(META_VERSION) == MODERN

    if method == "tools/call":
        if params.get("name") != "echo":
            await _send(send, 200, _error(request_id, -32602, f"Unknown tool: {params.get('name')}"))
            return
        arguments = params.get("arguments") or {}
        result: dict[str, Any] = {"content": [{"type": "text", "text": arguments.get("text", "")}], "isError": False}
    elif method == "initialize":
        requested = params.get("protocolVersion")
        result = {
            "protocolVersion": requested if requested == LEGACY else LEGACY,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
        }
        await _send(send, 200, _result(request_id, result), [(b"mcp-session-id", os.urandom(16).hex().encode())])
        return
    elif method == "server/discover":
        if not modern:
            await _send(send, 400, _error(request_id, -32600, "server/discover needs the 2026-07-28 _meta envelope"))
            return
        result = {
            "supportedVersions": [MODERN, LEGACY],
            "capabilities": {"tools": {}},
            "serverInfo": SERVER_INFO,
            "ttlMs": 0,
            "cacheScope": "public",
        }
    elif method == "tools/list":
        result = {"tools": [ECHO_TOOL]}
    elif method == "ping":
        result = {}
    else:
        await _send(send, 200, _error(request_id, -32601, f"Method not found: {method}"))
        return
    if modern:
        result["resultType"] = "complete"
    await _send(send, 200, _result(request_id, result))


async def _serve(port: int) -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="none",  # the loop is already uvloop (see main)
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        log_config=None,
        backlog=1024,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # startup failed: surface the error
            raise SystemExit(1)
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=19001, help="port on 127.0.0.1 (0: pick a free one)")
    args = parser.parse_args()
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve(args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
