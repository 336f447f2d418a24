"""A minimal MCP-over-HTTP client on a blocking keep-alive socket: requests as pre-built bytes.

Used for the handshake, single probes and the concurrency-1 latency run, where a tiny, exactly timed
client matters more than features.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

HOST = "127.0.0.1"
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
CLIENT_INFO = {"name": "bench", "version": "1"}
CALL_TIMEOUT_S = 10.0


class Conn:
    """A minimal keep-alive HTTP/1.1 client on one blocking socket: pre-built requests, exact timing."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=CALL_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        sock = self.sock or self._connect()
        try:
            sock.sendall(raw)
            status, headers, body = self._read()
        except Exception:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _read(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            size = int(headers["content-length"])
            while len(self.buf) < size:
                self._fill()
            body, self.buf = self.buf[:size], self.buf[size:]
            return status, headers, body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._fill()
                parts.append(self.buf[:size])
                self.buf = self.buf[size + 2 :]
                if size == 0:
                    return status, headers, b"".join(parts)
        # No length: the body runs to the end of the connection.
        with contextlib.suppress(ConnectionError):
            while True:
                self._fill()
        body, self.buf = self.buf, b""
        self.close()
        return status, headers, body


def request_bytes(port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = ["POST /mcp HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


AUTHORIZATION_ENV = "MCP_BENCH_AUTHORIZATION"


def auth_headers() -> dict[str, str]:
    """The credential the load sends (set by run.py for the JWT run; load processes inherit it)."""
    value = os.environ.get(AUTHORIZATION_ENV)
    return {"Authorization": value} if value else {}


def base_headers(session_id: str | None, version: str, modern: bool) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Mcp-Protocol-Version": version,
        **auth_headers(),
    }
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    if modern:
        headers["Mcp-Method"] = "tools/call"
        headers["Mcp-Name"] = "echo"
    return headers


def call_body(request_id: int, modern: bool) -> bytes:
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": "hi"}}
    if modern:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            # What Claude Code declares: with a handshake-era upstream this takes the MRTR bridge path.
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "roots": {}},
        }
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}, separators=(",", ":")
    ).encode()


def answer_problem(status: int, body: bytes) -> str | None:
    """None for a good echo answer; otherwise what was wrong, with the exact response text."""
    text = body.decode("utf-8", errors="replace")
    if status != 200:
        return f"HTTP {status} {text}"
    try:
        message = json.loads(text)
    except ValueError:
        return f"HTTP 200 (not JSON) {text[:2000]}"
    if "error" in message or not isinstance(message.get("result"), dict):
        return f"HTTP 200 {text[:2000]}"
    return None


def handshake(port: int) -> str:
    """initialize + notifications/initialized; returns the session id or raises with the answer text."""
    conn = Conn(port)
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": CLIENT_INFO},
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        headers |= auth_headers()
        status, answer_headers, body = conn.exchange(request_bytes(port, json.dumps(init).encode(), headers))
        sid = answer_headers.get("mcp-session-id")
        if status != 200 or not sid:
            raise RuntimeError(f"initialize failed: HTTP {status} {body.decode(errors='replace')[:2000]}")
        headers |= {"Mcp-Session-Id": sid, "Mcp-Protocol-Version": LEGACY}
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
        status, _, body = conn.exchange(request_bytes(port, note, headers))
        if status != 202:
            raise RuntimeError(f"notifications/initialized: HTTP {status} {body.decode(errors='replace')[:2000]}")
        return sid
    finally:
        conn.close()


def probe_call(port: int, session_id: str | None, version: str, modern: bool) -> tuple[int, str]:
    conn = Conn(port)
    try:
        raw = request_bytes(port, call_body(1, modern), base_headers(session_id, version, modern))
        status, _, body = conn.exchange(raw)
        return status, body.decode("utf-8", errors="replace")
    finally:
        conn.close()
