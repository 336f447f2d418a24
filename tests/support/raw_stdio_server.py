"""A raw stdio MCP server (handshake era, newline-delimited JSON-RPC, no SDK) that can misbehave on cue.

    python tests/support/raw_stdio_server.py [--name NAME]

Each call runs on a thread of its own, so one call's output never holds up another's answer. Tools:

    echo {...}              answers {"server", "tool", "arguments"} as JSON text.
    big {bytes, tail_id}    answers with a text of `bytes` characters, on one line; `tail_id` puts the id
                            last, as the TypeScript SDK writes it.
    flood {count, size}     sends `count` notifications/progress of a `size`-character message (when the
                            call has a progressToken), then answers.
    bad_ids {}              first writes what no JSON-RPC peer should: answers and requests whose id is an
                            array, an object or true, a notification whose params is an array, progress and
                            cancellations whose token or request id is an array, a line that is not JSON;
                            then answers normally.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

_TOOLS = ("echo", "big", "flood", "bad_ids")
_write_lock = threading.Lock()


def _write(line: str) -> None:
    with _write_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _send(message: dict[str, Any]) -> None:
    _write(json.dumps(message, separators=(",", ":")))


def _text(request_id: Any, text: str) -> None:
    _send({"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": text}]}})


def _call(name: str, request_id: Any, params: dict[str, Any]) -> None:
    tool = params.get("name")
    args = params.get("arguments") or {}
    token = (params.get("_meta") or {}).get("progressToken")
    if tool == "big":
        text = "x" * int(args.get("bytes", 1000))
        result = {"content": [{"type": "text", "text": text}]}
        if args.get("tail_id"):
            _write(json.dumps({"result": result, "jsonrpc": "2.0", "id": request_id}, separators=(",", ":")))
        else:
            _send({"jsonrpc": "2.0", "id": request_id, "result": result})
        return
    if tool == "flood":
        message = "p" * int(args.get("size", 100))
        for step in range(int(args.get("count", 100))):
            if token is not None:
                params_ = {"progressToken": token, "progress": step, "message": message}
                _send({"jsonrpc": "2.0", "method": "notifications/progress", "params": params_})
        _text(request_id, json.dumps({"server": name, "tool": "flood", "sent": args.get("count", 100)}))
        return
    if tool == "bad_ids":
        for bad in ([request_id], {"id": request_id}, True):
            _send({"jsonrpc": "2.0", "id": bad, "result": {}})
            _send({"jsonrpc": "2.0", "id": bad, "method": "roots/list"})
        _send({"jsonrpc": "2.0", "method": "notifications/message", "params": ["not", "an", "object"]})
        _send({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": [1], "progress": 1}})
        _send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": [1]}})
        _write("this is not JSON")
        _write("[1, 2, 3]")
    _text(request_id, json.dumps({"server": name, "tool": tool, "arguments": args}))


def _answer(name: str, message: dict[str, Any]) -> None:
    method = message.get("method")
    request_id = message.get("id")
    params = message.get("params") or {}
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": name, "version": "1"},
        }
        _send({"jsonrpc": "2.0", "id": request_id, "result": result})
    elif method == "ping":
        _send({"jsonrpc": "2.0", "id": request_id, "result": {}})
    elif method == "tools/list":
        tools = [{"name": tool, "inputSchema": {"type": "object"}} for tool in _TOOLS]
        _send({"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}})
    elif method == "tools/call":
        threading.Thread(target=_call, args=(name, request_id, params), daemon=True).start()
    elif request_id is not None:
        error = {"code": -32601, "message": f"Method not found: {method}"}
        _send({"jsonrpc": "2.0", "id": request_id, "error": error})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="raw")
    name = parser.parse_args().name
    print("READY stdio", file=sys.stderr, flush=True)
    for line in sys.stdin:
        if line.strip():
            message = json.loads(line)
            if "method" in message:
                _answer(name, message)


if __name__ == "__main__":
    main()
