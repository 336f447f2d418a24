"""A lean HTTP/1.1 client for the one request on the hot path: POST a JSON-RPC message to an upstream.

aiohttp spent ~40% of a worker's CPU per `tools/call` (request objects, header multidicts, timers, payload
wrappers). This is an asyncio protocol over keep-alive connections, parsed by httptools (llhttp, the parser
uvicorn already uses for the front door): request bytes are built in one join, the response is a status,
a header dict and body chunks. JSON answers, chunked SSE answers and read-until-close bodies are supported;
everything rarer (the GET stream, resumption, DELETE) stays on aiohttp.

Bodies are bounded by the upstream's `max_message_bytes`: a message body (anything but an event stream,
whose events the SSE decoder bounds one by one) fails with `MessageTooLarge` once its decoded size passes
the limit, before the rest is read. gzip and deflate are inflated as the body is read, in pieces of at
most `_PIECE` bytes (`decompress(data, max_length)`), so a small compressed body never becomes a large
buffer at once and inflating stops as soon as the limit is passed.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httptools

from .fair_slots import FairSlots
from .limits import DEFAULT_MAX_MESSAGE_BYTES, MessageTooLarge

_IDLE_SECONDS = 30.0  # idle connections older than this are closed, not reused
_HIGH_WATER = 1 << 20  # unread body bytes above which the socket stops being read
_PIECE = 256 * 1024  # most bytes one inflate step produces
_FORBIDDEN = frozenset("\r\n\0")


class Http1Error(Exception):
    """The connection failed: `connect` tells whether it never connected (refused, unreachable)."""

    def __init__(self, reason: str, *, connect: bool = False) -> None:
        super().__init__(reason)
        self.connect = connect


class Http1Response(asyncio.Protocol):
    """One connection, and the response currently being read on it."""

    def __init__(self, max_body: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_body = max_body
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reset()
        self.lost = False
        self.idle_since = 0.0

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._wake: asyncio.Future[None] | None = None
        self._complete = False
        self._until_close = False
        self._error: Http1Error | MessageTooLarge | None = None
        self._paused = False
        self._inflate: Any = None  # a zlib decompressor when the body is gzip- or deflate-encoded
        self._stream = False  # an event stream: no cap on the whole body, the SSE decoder caps each event
        self._received = 0  # decoded body bytes so far (message bodies only)
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Http1Error(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._head.done() and self._until_close and not self._complete:
            self.on_message_complete()  # the body ran until the server closed: that is its end
        elif not self._complete:
            self._fail(Http1Error("connection lost mid-response" if self._head.done() else "server disconnected"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools joins a name or value split across reads before calling; a repeated header keeps the last.
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        headers = self.headers
        length = headers.get("content-length")
        self._until_close = length is None and "chunked" not in headers.get("transfer-encoding", "")
        self._stream = headers.get("content-type", "").startswith("text/event-stream")
        # No Accept-Encoding is sent, but a server that compresses anyway is still understood.
        if headers.get("content-encoding", "identity").lower() in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(47)  # gzip or zlib framing, detected from the header
        elif not self._stream and length is not None and length.isdigit() and int(length) > self.max_body:
            self._too_large()  # refused from its length alone, before any of it is read
            return
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._error is not None:
            return  # failed (too large): the rest of what this read brought is dropped
        if self._inflate is None and not self._stream:
            self._received += len(body)
            if self._received > self.max_body:
                self._too_large()
                return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._notify()

    def on_message_complete(self) -> None:
        if self._error is not None:
            return  # a body refused as too large never completes, even if its end came in the same read
        self._complete = True
        self.keep_alive = self._parser.should_keep_alive() and not self._until_close
        if not self._head.done():
            self._head.set_result(None)
        self._notify()

    # the reading side
    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _fail(self, error: Http1Error | MessageTooLarge) -> None:
        if self._error is None:  # the first error is the reason; the connection loss that follows is not
            self._error = error
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: a request abandoned before the head must not warn
        self._notify()

    def _too_large(self) -> None:
        self._fail(MessageTooLarge(self.max_body))
        self.close()

    def _inflated(self, data: bytes) -> Iterator[bytes]:
        inflate = self._inflate
        while data:
            room = _PIECE if self._stream else min(_PIECE, self.max_body - self._received + 1)
            try:
                piece = inflate.decompress(data, room)
            except zlib.error as exc:
                self.close()
                raise Http1Error(f"undecodable compressed body: {exc}") from None
            data = inflate.unconsumed_tail
            if not self._stream:
                self._received += len(piece)
                if self._received > self.max_body:
                    self.close()
                    raise MessageTooLarge(self.max_body)
            if piece:
                yield piece

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive (decoded), until the response ends."""
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= _HIGH_WATER // 4 and self._transport is not None:
                    self._paused = False
                    self._transport.resume_reading()
                if self._inflate is None:
                    yield chunk
                else:
                    for piece in self._inflated(chunk):
                        yield piece
            if self._complete:
                return
            if self._error is not None:
                raise self._error
            self._wake = asyncio.get_running_loop().create_future()
            await self._wake
            self._wake = None

    async def read(self) -> bytes:
        if self._complete and len(self._chunks) <= 1 and self._inflate is None:
            body = self._chunks.popleft() if self._chunks else b""
            self._buffered = 0
            return body
        return b"".join([chunk async for chunk in self.iter_any()])

    @property
    def complete(self) -> bool:
        return self._complete and not self._chunks

    def send(self, request: bytes) -> None:
        assert self._transport is not None
        self._reset()
        self._transport.write(request)

    def close(self) -> None:
        self.lost = True
        if self._transport is not None:
            self._transport.close()


class Http1Pool:
    """Keep-alive connections to one origin; `post` borrows one for a request and its whole response."""

    def __init__(
        self, url: str, connect_timeout: float, limit: int = 256, max_body: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        self._request_line = f"POST {target} HTTP/1.1\r\nhost: {authority}\r\n".encode()
        self._connect_timeout = connect_timeout
        self._max_body = max_body
        self._idle: list[Http1Response] = []
        self._closed = False
        self._slots = FairSlots(limit)  # shared fairly between tenants (see fair_slots)
        self._encoded: tuple[dict[str, str], bytes] | None = None  # the last static header dict, encoded

    def _head(self, headers: dict[str, str], extra: dict[str, str] | None) -> bytes:
        cached = self._encoded
        if cached is None or cached[0] is not headers:
            cached = self._encoded = (headers, _encode(headers))
        if not extra:
            return cached[1]
        if headers.keys() & extra.keys():
            return _encode({**headers, **extra})
        return cached[1] + _encode(extra)

    async def _connection(self) -> Http1Response:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.lost and now - connection.idle_since < _IDLE_SECONDS:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: Http1Response(self._max_body),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError:
            raise Http1Error(f"connect timed out after {self._connect_timeout:g}s", connect=True) from None
        except ssl.SSLError as exc:
            raise Http1Error(f"TLS handshake failed: {exc.reason or exc}", connect=True) from None
        except ConnectionRefusedError:
            raise Http1Error("connection refused", connect=True) from None
        except OSError as exc:
            raise Http1Error(f"cannot connect: {exc.strerror or exc}", connect=True) from None
        return connection

    def post(
        self, headers: dict[str, str], body: bytes, extra: dict[str, str] | None = None, tenant: str | None = None
    ) -> _Exchange:
        """`async with pool.post(...) as response:`; the connection goes back to the pool only when the
        response was read to its end and the server keeps it alive. `tenant` is whom the slot is counted
        for (None: the gateway's own traffic)."""
        request = self._request_line + self._head(headers, extra) + b"content-length: %d\r\n\r\n" % len(body) + body
        return _Exchange(self, request, tenant)

    def _release(self, connection: Http1Response) -> None:
        if connection.complete and connection.keep_alive and not connection.lost and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Closes the idle connections now, and those in use when their exchange ends."""
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class _Exchange:
    __slots__ = ("_connection", "_pool", "_request", "_tenant")

    def __init__(self, pool: Http1Pool, request: bytes, tenant: str | None) -> None:
        self._pool = pool
        self._request = request
        self._tenant = tenant
        self._connection: Http1Response | None = None

    async def __aenter__(self) -> Http1Response:
        pool = self._pool
        await pool._slots.acquire(self._tenant)
        try:
            connection = self._connection = await pool._connection()
            connection.send(self._request)
            await connection._head
        except BaseException:
            self._done()
            raise
        return connection

    async def __aexit__(self, *exc_info: Any) -> None:
        self._done()

    def _done(self) -> None:
        if self._connection is not None:
            self._pool._release(self._connection)
            self._connection = None
        self._pool._slots.release(self._tenant)


def _encode(headers: dict[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value):
            raise ValueError(f"header {name!r} holds a line break or NUL")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()
