"""Upstream MCP servers written at the byte level, on 127.0.0.1, each on an event loop in a thread of its own
(so a test may block, e.g. waiting for the gateway to be ready, while they serve): `with RawHttpUpstream(...)`.

For what no well-behaved server sends: oversized, compressed or oddly framed bodies, hostile SSE events.
Both speak the handshake era just far enough for the gateway to connect, list one set of tools and call them.

- `RawHttpUpstream(tools, get_stream=...)`: streamable HTTP at /mcp. `tools` maps a tool name to a function of
  the request id that returns the whole HTTP response (status line, headers, body) for a call of it; `close`
  after an answer is the tool's choice (`Answer.close`). Every other method gets a small JSON answer. The GET
  stream is refused (405) unless `get_stream` gives the (async) pieces of its body (an SSE stream, then held open);
  `gzip_get` sends them gzip-encoded, each piece flushed.
- `RawSseUpstream(events, endpoint=...)`: legacy HTTP+SSE (GET /sse, POST /messages). `events` maps a tool
  name to a function of the request id and params returning the raw bytes written on the event stream for a
  call.
  `endpoint` overrides the `endpoint` event's data (to point it somewhere else).
"""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    raw: bytes
    close: bool = False  # close the connection after writing it (read-until-close bodies)


def json_answer(message: dict[str, Any], extra_headers: bytes = b"") -> Answer:
    body = json.dumps(message).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(body)
    return Answer(head + extra_headers + b"\r\n" + body)


def text_result(request_id: Any, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": text}]}}


def _tools_list(request_id: Any, names: list[str]) -> dict[str, Any]:
    tools = [{"name": name, "inputSchema": {"type": "object"}} for name in [*names, "echo"]]
    return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}}


def _handshake(message: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    """The answer to anything but a tools/call (None: a notification)."""
    method, request_id = message.get("method"), message.get("id")
    if request_id is None:
        return None
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw", "version": "1"},
        }
        return {"jsonrpc": "2.0", "id": request_id, "result": result}
    if method == "tools/list":
        return _tools_list(request_id, names)
    return {"jsonrpc": "2.0", "id": request_id, "result": {}}


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, target, headers, body


@dataclass
class _Server:
    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # the JSON-RPC methods POSTed, in order
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the gateway went away, or the server is stopping
        finally:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        listening = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            listening.set()
            await self._stop.wait()
            server.close()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        listening.wait(5)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        assert self._loop is not None and self._stop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


class RawHttpUpstream(_Server):
    def __init__(
        self,
        tools: dict[str, Callable[[Any], Answer]],
        get_stream: Callable[[], AsyncIterable[bytes]] | None = None,
        gzip_get: bool = False,
    ) -> None:
        super().__init__()
        self.tools = tools
        self.get_stream = get_stream
        self.gzip_get = gzip_get

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, target, headers, body = await _read_request(reader)
            self.requests.append((method, target, headers))
            if method == "GET" and self.get_stream is not None:
                await self._stream(reader, writer, self.get_stream())
                return
            if method != "POST":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                continue
            message = json.loads(body)
            self.methods.append(message.get("method"))
            answer = self._answer(message)
            writer.write(answer.raw)
            await writer.drain()
            if answer.close:
                return

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: AsyncIterable[bytes]
    ) -> None:
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
        writer.write(head + (b"content-encoding: gzip\r\n\r\n" if self.gzip_get else b"\r\n"))
        packer = zlib.compressobj(9, zlib.DEFLATED, 31) if self.gzip_get else None
        async for piece in body:
            if packer is not None:
                piece = packer.compress(piece) + packer.flush(zlib.Z_SYNC_FLUSH)
            if piece:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
        await reader.read()  # held open until the gateway goes away

    def _answer(self, message: dict[str, Any]) -> Answer:
        if message.get("method") == "tools/call":
            name = message["params"]["name"]
            if name == "echo":
                return json_answer(text_result(message["id"], json.dumps(message["params"].get("arguments"))))
            return self.tools[name](message["id"])
        answer = _handshake(message, list(self.tools))
        if answer is None:
            return Answer(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
        return json_answer(answer)


class RawSseUpstream(_Server):
    def __init__(self, events: dict[str, Callable[[Any, dict[str, Any]], bytes]], endpoint: str | None = None) -> None:
        super().__init__()
        self.events = events
        self.endpoint = endpoint
        self._stream: asyncio.StreamWriter | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sse"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, target, headers, body = await _read_request(reader)
            self.requests.append((method, target, headers))
            if method == "GET":
                self._stream = writer
                endpoint = self.endpoint or "/messages?session_id=1"
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n")
                writer.write(b"event: endpoint\ndata: %s\n\n" % endpoint.encode())
                await writer.drain()
                await reader.read()  # held open until the gateway goes away
                return
            writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 8\r\n\r\nAccepted")
            await writer.drain()
            await self._reply(json.loads(body))

    async def _reply(self, message: dict[str, Any]) -> None:
        if message.get("method") == "tools/call":
            name = message["params"]["name"]
            if name == "echo":
                raw = (
                    b"event: message\ndata: %s\n\n"
                    % json.dumps(text_result(message["id"], json.dumps(message["params"].get("arguments")))).encode()
                )
            else:
                raw = self.events[name](message["id"], message["params"])
        else:
            answer = _handshake(message, list(self.events))
            if answer is None:
                return
            raw = b"event: message\ndata: %s\n\n" % json.dumps(answer).encode()
        assert self._stream is not None
        self._stream.write(raw)
        await self._stream.drain()
