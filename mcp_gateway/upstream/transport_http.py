"""Streamable HTTP upstream (both eras): one keep-alive connection pool per upstream, POST per message.

POSTs (every request and notification) go through the lean `http1` client; the long-lived GET stream,
stream resumption and the closing DELETE use aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from ..jsonrpc import UPSTREAM_ERROR, McpError, valid_id
from .http1 import Http1Error, Http1Pool
from .limits import DEFAULT_MAX_MESSAGE_BYTES, MessageTooLarge, too_large
from .relay import Relay
from .sse import SseDecoder
from .transport import Transport, UpstreamGone

log = logging.getLogger("mcp_gateway.upstream")

_ACCEPT = "application/json, text/event-stream"
_MAX_RESUMES = 100


class SessionExpired(McpError):
    """The upstream answered 404 to a request carrying our session id: re-initialize and retry."""

    def __init__(self, upstream: str) -> None:
        super().__init__(UPSTREAM_ERROR, f"upstream '{upstream}' session expired")


class StreamableHttpTransport(Transport):
    def __init__(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        connect_timeout: float,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(name)
        self.url = url
        self._max_message = max_message_bytes
        self._static_headers = {k.lower(): v for k, v in headers.items()}
        self._session_headers: dict[str, str] = {}
        self._auth_headers: dict[str, str] = {}
        self._connect_timeout = connect_timeout
        self._http: aiohttp.ClientSession | None = None
        self._posts: Http1Pool | None = None
        self._listener: asyncio.Task[None] | None = None
        self._post_headers: dict[str, str] = {}
        self.last_session_id: str | None = None
        self._rebuild_headers()

    def _rebuild_headers(self) -> None:
        self._post_headers = {
            "content-type": "application/json",
            "accept": _ACCEPT,
            **self._static_headers,
            **self._auth_headers,
            **self._session_headers,
        }

    def set_session_headers(self, headers: dict[str, str]) -> None:
        self._session_headers = {k.lower(): v for k, v in headers.items()}
        self._rebuild_headers()

    def set_auth_headers(self, headers: dict[str, str]) -> None:
        self._auth_headers = {k.lower(): v for k, v in headers.items()}
        self._rebuild_headers()

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
        self._http = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=True, skip_auto_headers=("User-Agent",)
        )
        self._posts = Http1Pool(self.url, self._connect_timeout, max_body=self._max_message)

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self.closed.is_set():
            raise UpstreamGone(self.name, self.close_reason or "not connected")
        return self._http

    @property
    def posts(self) -> Http1Pool:
        if self._posts is None or self.closed.is_set():
            raise UpstreamGone(self.name, self.close_reason or "not connected")
        return self._posts

    async def exchange(
        self,
        message: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        related: Relay | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        request_id = message.get("id")
        try:
            async with self.posts.post(self._post_headers, orjson.dumps(message), headers, tenant) as response:
                content_type = response.headers.get("content-type", "")
                session_id = response.headers.get("mcp-session-id")
                if session_id:
                    self.last_session_id = session_id
                if response.status == 404 and "mcp-session-id" in self._session_headers:
                    raise SessionExpired(self.name)
                if content_type.startswith("text/event-stream") and response.status == 200:
                    decoder = SseDecoder(self._max_message)
                    answer = await self._read_events(response.iter_any(), decoder, request_id, related)
                    if answer is not None:
                        return answer
                else:
                    decoder = None
                    body = await response.read()
        except MessageTooLarge:
            # This call's answer only: its connection is closed (not reused), the upstream stays up.
            raise too_large(self.name, self._max_message) from None
        except Http1Error as exc:
            raise self._lost(exc) from None
        except ValueError as exc:  # a header value that cannot go on the wire
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.name}': {exc}") from None
        if decoder is not None:  # the stream ended before the answer: resume it, the POST's connection returned
            return await self._resume(decoder, request_id, related)
        answer = _parse(body) if body else None
        if answer is not None and "method" not in answer and ("result" in answer or "error" in answer):
            return answer
        raise McpError(UPSTREAM_ERROR, f"upstream '{self.name}' answered HTTP {response.status}")

    async def _read_events(
        self, chunks: AsyncIterator[bytes], decoder: SseDecoder, request_id: Any, related: Relay | None
    ) -> dict[str, Any] | None:
        """Relay what precedes the answer; return the answer, or None if the stream ends first."""
        async for chunk in chunks:
            events = decoder.feed(chunk)
            if decoder.skipping:
                raise MessageTooLarge(self._max_message)  # stop now rather than read the rest of it
            for event in events:
                if event.dropped is not None:
                    raise event.dropped
                if event.event != "message" or not event.data:
                    continue
                message = _parse(event.data)
                if message is None:
                    continue
                answer_id = message.get("id")
                if "method" not in message and answer_id == request_id and valid_id(answer_id):
                    return message  # (valid_id: `true` == 1 in Python, and must not answer request 1)
                if self.on_incoming is not None:
                    await self.on_incoming(message, related)
        return None

    async def _resume(self, decoder: SseDecoder, request_id: Any, related: Relay | None) -> dict[str, Any]:
        """SSE polling (SEP-1699): the server closed the stream early; resume it with Last-Event-ID."""
        for _ in range(_MAX_RESUMES):
            if decoder.last_event_id is None:
                break
            await asyncio.sleep((decoder.retry or 0) / 1000)
            headers = {k: v for k, v in self._post_headers.items() if k != "content-type"}
            headers["accept"] = "text/event-stream"
            headers["last-event-id"] = decoder.last_event_id
            try:
                async with self.http.get(self.url, headers=headers) as response:
                    if response.status != 200:
                        break
                    answer = await self._read_events(response.content.iter_any(), decoder, request_id, related)
            except MessageTooLarge:
                raise too_large(self.name, self._max_message) from None
            except aiohttp.ClientError as exc:
                raise self._failed(exc) from None
            if answer is not None:
                return answer
        raise UpstreamGone(self.name, "the response stream ended before the result")

    async def send(self, message: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        try:
            async with self.posts.post(self._post_headers, orjson.dumps(message), headers) as response:
                await response.read()
                if response.status >= 400:
                    log.debug("upstream %s answered %s to a notification", self.name, response.status)
        except MessageTooLarge:
            raise too_large(self.name, self._max_message) from None
        except Http1Error as exc:
            raise self._lost(exc) from None
        except ValueError as exc:
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.name}': {exc}") from None

    def _lost(self, exc: Http1Error) -> UpstreamGone:
        """A refused or broken connection means the server is gone: the pool reconnects and re-lists."""
        reason = str(exc)
        self.mark_lost(reason)
        return UpstreamGone(self.name, reason)

    def _failed(self, exc: aiohttp.ClientError) -> UpstreamGone:
        """A refused or broken connection means the server is gone: the pool reconnects and re-lists."""
        reason = _describe_client_error(exc)
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
            self.mark_lost(reason)
        return UpstreamGone(self.name, reason)

    async def start_listening(self) -> None:
        """Open the legacy GET stream for list_changed and requests not tied to a call."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"http-get:{self.name}")

    async def _listen(self) -> None:
        last_event_id: str | None = None
        delay = 0.5
        while not self.closed.is_set():
            headers = {k: v for k, v in self._post_headers.items() if k != "content-type"}
            headers["accept"] = "text/event-stream"
            if last_event_id:
                headers["last-event-id"] = last_event_id
            try:
                async with self.http.get(self.url, headers=headers) as response:
                    if response.status == 405:
                        return  # the server offers no standalone stream
                    if response.status == 404:
                        self.mark_lost("session expired")
                        return
                    if response.status != 200:
                        raise aiohttp.ClientResponseError(
                            response.request_info, (), status=response.status, message="GET stream refused"
                        )
                    delay = 0.5
                    decoder = SseDecoder(self._max_message)
                    async for chunk in response.content.iter_any():
                        for event in decoder.feed(chunk):
                            if event.dropped is not None:
                                error = too_large(self.name, self._max_message)
                                self.warnings.warning("too-large", "%s; dropped from the GET stream", error.message)
                                continue
                            message = _parse(event.data) if event.data else None
                            if message is not None and self.on_incoming is not None:
                                await self.on_incoming(message, None)
            except asyncio.CancelledError:
                raise
            except UpstreamGone:
                return
            except (aiohttp.ClientError, OSError) as exc:
                log.debug("upstream %s GET stream dropped: %s", self.name, exc)
                delay = min(delay * 2, 10.0)
            else:
                # The server ended the stream (SSE polling): resume where it left off, when it asks us to.
                last_event_id = decoder.last_event_id or last_event_id
                if decoder.retry is not None:
                    delay = decoder.retry / 1000
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        if self._http is not None and "mcp-session-id" in self._session_headers and not self.closed.is_set():
            # Ending the session politely frees the upstream's state; failures do not matter.
            with contextlib.suppress(Exception):
                async with self._http.delete(
                    self.url, headers=self._post_headers, timeout=aiohttp.ClientTimeout(total=2)
                ):
                    pass
        self.mark_lost("closed by the gateway")
        if self._posts is not None:
            self._posts.close()
        if self._http is not None:
            await self._http.close()


def _parse(raw: bytes | str) -> dict[str, Any] | None:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


def _describe_client_error(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection lost mid-response"
    return type(exc).__name__
