"""Raw sockets against a gateway, for tests of the connection layer (heads, timeouts, the connection cap).

Everything is bounded: sockets have timeouts, loops have deadlines.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from typing import Any

from tests.support.wire import envelope, modern_headers


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed), within `timeout`.

    Raises TimeoutError when the server neither answers nor closes in time."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while len(received) < limit:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise TimeoutError(f"no close within {timeout}s; received {received[:200]!r}") from None
        if not chunk:
            return received
        received += chunk
    return received


def status_of(response: bytes) -> int | None:
    """The status code of the first response in `response`, or None if there is none."""
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])


def process_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def tools_call(connection: http.client.HTTPConnection, name: str, arguments: dict[str, Any], request_id: int) -> Any:
    """A 2026-07-28 `tools/call` on a kept-alive connection; the JSON-RPC result (asserts there is one)."""
    params = {"name": name, "arguments": arguments, "_meta": envelope()}
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})
    headers = modern_headers("tools/call", params)
    connection.request("POST", "/mcp", body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    assert response.status == 200, (response.status, payload[:300])
    message = json.loads(payload)
    assert "result" in message, message
    return message["result"]
