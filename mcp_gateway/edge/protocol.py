"""uvicorn's httptools protocol with the bounds a production edge needs (head size, time, connections).

What uvicorn does not do, and why it matters:
- httptools hands a header to the protocol only once it is complete, and grows it by `bytes +=` on
  every read: one 200 MB header value costs quadratic CPU and its whole size in memory. So bytes are
  counted as they arrive, before the parser sees them, and the parser is never fed past the limit.
- uvicorn arms its keep-alive timer only after a response: a connection that never sends a byte, or
  sends one now and then, is held forever (slowloris).
- It accepts until the process runs out of descriptors, and then its upstream connects fail too.

Per request this adds a few attribute checks: no timer is armed unless a head spans reads.
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .limits import EdgeLimits, EdgeState

# RFC 9112 §9.6: after an error response, half-close and keep reading (and discarding) a while, so the
# client reads the response before its unread upload makes our kernel reset the connection.
_LINGER_SECONDS = 2.0
# Reason phrases as RFC 9110 §15 and RFC 6585 §5 spell them (Python's table still says "Request-URI").
_PHRASES = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
_NOTICE_KINDS = {400: "malformed (400)", 408: "too slow (408)", 414: "URI too long (414)", 431: "head too large (431)"}


def _field_bytes(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """A lower bound of a head's size on the wire: target, fields, their separators and line ends."""
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers) + 16


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; `EdgeProtocol._refusal` says why."""


def refusal(status: int, reason: str) -> bytes:
    """A complete error response that ends the connection (plain text: no route has been chosen yet)."""
    body = reason.encode()
    head = [
        b"HTTP/1.1 %d %s" % (status, _PHRASES[status]),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if status == 503:
        head.append(b"retry-after: 1")
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class EdgeProtocol(HttpToolsProtocol):
    """Pass as uvicorn's `http=`; the server's state must be an `EdgeState` (serving.DrainingServer)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(server_state, EdgeState), "EdgeProtocol needs an EdgeState (serving.DrainingServer)"
        self._edge = server_state
        self._limits: EdgeLimits = server_state.limits
        self._max_url = self._limits.max_url_bytes
        self._max_headers = self._limits.max_headers
        # Reading a head (or waiting for one, or a chunked body's trailers): bytes count against its budget.
        self._in_head = True
        self._head_left = self._limits.max_head_bytes
        self._head_gen = 0  # a new head, a new budget: tells "this head is still incomplete" from "the next one"
        self._head_timer: TimerHandle | None = None
        self._linger_timer: TimerHandle | None = None
        self._ended_in_read = False  # a request ended in the read being parsed
        self._head_mid_read = False  # this head began in a read after the previous request's end
        self._refusal: tuple[int, str] | None = None
        self._discarding = False  # refused: read and drop whatever else arrives
        self._over_cap = False

    # -- connections ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        edge = self._edge
        if len(self.connections) >= edge.max_connections:
            # Refuse before any state exists: one write and a close, so a flood costs the accept loop little.
            self._over_cap = self._discarding = True
            edge.over_cap.note("refused", open=len(self.connections), cap=edge.max_connections)
            transport.write(refusal(503, "too many connections; retry shortly"))
            transport.close()
            return
        super().connection_made(transport)
        # uvicorn arms its idle timer only after a response; a connection that never sends must not stay.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._linger_timer = None
        if self._over_cap:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        self._unset_keepalive_if_required()
        self._ended_in_read = False
        gen = self._head_gen
        if self._in_head and len(data) > self._head_left:
            self._feed_past_budget(data)
        else:
            if self._in_head:
                self._head_left -= len(data)
            try:  # _feed, inlined: it runs per read
                self.parser.feed_data(data)
            except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
                self._parse_stopped(exc)
                return
        if not self._in_head or self._discarding:
            return
        if self._head_gen == gen:
            if self._head_timer is None:
                # A head is under way and spans reads: from now on it has header_timeout to finish.
                self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)
        elif self._head_mid_read:
            # A pipelined head began inside this read, after the previous request: how much of the read
            # is its own is unknown, so count all of it (HTTP clients do not pipeline in practice).
            self._head_left = max(0, self._limits.max_head_bytes - len(data))

    def _feed_past_budget(self, data: bytes) -> None:
        """Feed only what the head's budget allows; if the head has not ended within it, it is too large."""
        view = memoryview(data)
        while len(view) > 0:
            if not self._in_head or len(view) <= self._head_left:
                if self._in_head:
                    self._head_left -= len(view)
                self._feed(view)
                return
            cut, gen = self._head_left, self._head_gen
            self._head_left = 0
            if not self._feed(view[:cut]):
                return
            if self._in_head and self._head_gen == gen:
                self._refuse(431, self._too_large())
                return
            view = view[cut:]

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parse; False when this connection stopped parsing (refused or upgraded)."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            self._parse_stopped(exc)
            return False
        return True

    def _parse_stopped(self, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserUpgrade):
            # uvicorn's own handling: a WebSocket upgrade moves the connection to another protocol.
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        status, reason = self._refusal or (400, "invalid HTTP request")
        self._refuse(status, reason)

    # -- parser callbacks ----------------------------------------------------------------------------

    # on_url and on_header are uvicorn's, inlined with their checks: they run per request and per field.

    def on_url(self, url: bytes) -> None:
        if self._ended_in_read:  # this request began in the read that ended the one before it (pipelined)
            self._head_mid_read = True
        self.url += url
        if len(self.url) > self._max_url:
            self._refusal = (414, f"URI too long: the request target exceeds {self._max_url} bytes")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        if len(headers) >= self._max_headers:
            self._refusal = (431, f"request header fields too large: more than {self._max_headers} fields")
            raise _Refused
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._head_mid_read and _field_bytes(self.url, self.headers) > self._limits.max_head_bytes:
            # Its bytes were not counted as they came (it began inside a read): count what it holds.
            self._refusal = (431, self._too_large())
            raise _Refused
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        # The last chunk is followed by trailer fields (RFC 9112 §7.1.2), parsed like headers: the same budget.
        self._begin_head()

    def on_body(self, body: bytes) -> None:
        if self._in_head:  # chunk data after a chunk header: not trailers
            self._in_head = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._ended_in_read = True
        self._in_head = True  # _begin_head, inlined: it runs per request
        self._head_left = self._limits.max_head_bytes
        self._head_gen += 1
        self._head_mid_read = False

    def _begin_head(self) -> None:
        self._in_head = True
        self._head_left = self._limits.max_head_bytes
        self._head_gen += 1
        self._head_mid_read = False

    # -- refusals ------------------------------------------------------------------------------------

    def _too_large(self) -> str:
        return f"request header fields too large: the request head exceeds {self._limits.max_head_bytes} bytes"

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._discarding and not self.transport.is_closing():
            seconds = self._limits.header_timeout
            self._refuse(408, f"request timeout: the request head did not arrive within {seconds:g}s")

    def _refuse(self, status: int, reason: str) -> None:
        """Answer `status` (RFC 9110 §15.5, RFC 6585 §5) and end the connection; nothing more is parsed."""
        self._discarding = True
        self._unset_keepalive_if_required()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._edge.refusals.note(_NOTICE_KINDS[status])
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started or not cycle.more_body:
                # A response is due or going out for an earlier request (the refused head was pipelined
                # behind it): never interleave another (RFC 9112 §9.3.2); close once it is sent.
                cycle.keep_alive = False
                return
            # This request's own trailers were refused: its app sees the client leave; the refusal answers.
            cycle.disconnected = True
            cycle.message_event.set()
        transport = self.transport
        transport.write(refusal(status, reason))
        if transport.can_write_eof():
            transport.write_eof()
            self.flow.resume_reading()
            self._linger_timer = self.loop.call_later(_LINGER_SECONDS, transport.abort)
        else:
            transport.close()
