"""Legacy HTTP+SSE upstream (2024-11-05): one GET event stream in (aiohttp), POSTs to the announced endpoint
out (the lean `http1` client, as for streamable HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import orjson

from .http1 import Http1Error, Http1Pool
from .limits import DEFAULT_MAX_MESSAGE_BYTES, MessageTooLarge, too_large
from .sse import SseDecoder
from .transport import StreamTransport, UpstreamGone

log = logging.getLogger("mcp_gateway.upstream")


class LegacySseTransport(StreamTransport):
    def __init__(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        connect_timeout: float,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(name, max_message_bytes)
        self.url = url
        self._base_headers = {k.lower(): v for k, v in headers.items()}
        self._headers = dict(self._base_headers)
        self._post_headers = {**self._headers, "content-type": "application/json"}
        self._posts: Http1Pool | None = None
        self._connect_timeout = connect_timeout
        self._http: aiohttp.ClientSession | None = None
        self._endpoint: str | None = None
        self._reader: asyncio.Task[None] | None = None

    def set_auth_headers(self, headers: dict[str, str]) -> None:
        self._headers = {**self._base_headers, **{k.lower(): v for k, v in headers.items()}}
        self._post_headers = {**self._headers, "content-type": "application/json"}

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
        )
        endpoint_ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(endpoint_ready), name=f"sse:{self.name}")
        try:
            self._endpoint = await asyncio.wait_for(endpoint_ready, self._connect_timeout)
        except TimeoutError:
            await self.aclose()
            raise UpstreamGone(self.name, "no endpoint event on the SSE stream") from None
        try:
            self._posts = Http1Pool(self._endpoint, self._connect_timeout, max_body=self._max_message)
        except ValueError as exc:
            await self.aclose()
            raise UpstreamGone(self.name, f"unusable endpoint event: {exc}") from None

    async def _read(self, endpoint_ready: asyncio.Future[str]) -> None:
        assert self._http is not None
        reason = "event stream ended"
        try:
            headers = {**self._headers, "accept": "text/event-stream"}
            async with self._http.get(self.url, headers=headers) as response:
                if response.status != 200:
                    raise UpstreamGone(self.name, f"SSE endpoint answered HTTP {response.status}")
                decoder = SseDecoder(self._max_message)
                async for chunk in response.content.iter_any():
                    for event in decoder.feed(chunk):
                        if event.dropped is not None:
                            self._skipped_too_large(event.dropped.head, event.dropped.tail)
                            continue
                        if event.event == "endpoint":
                            if not endpoint_ready.done():
                                endpoint_ready.set_result(self._endpoint_of(event.data))
                            continue
                        await self._deliver(event.data)
        except UpstreamGone as exc:
            reason = exc.message
            if not endpoint_ready.done():
                endpoint_ready.set_exception(exc)
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"event stream failed: {type(exc).__name__}"
            if not endpoint_ready.done():
                endpoint_ready.set_exception(UpstreamGone(self.name, reason))
        finally:
            self._pending.fail_all(reason)
            self.mark_lost(reason)

    def _endpoint_of(self, data: str) -> str:
        """Where to POST, from the `endpoint` event: on the SSE URL's own origin only (scheme, host and port,
        RFC 6454 §4), as the MCP SDK's client requires. Anything else would send every message, and the
        credentials in its headers, wherever the event says."""
        endpoint = urljoin(self.url, data.strip())
        if _origin(endpoint) != _origin(self.url):
            raise UpstreamGone(
                self.name,
                f"its endpoint event names another origin ({_shown_origin(endpoint)}); "
                f"only endpoints on {_shown_origin(self.url)} are accepted",
            )
        return endpoint

    async def _write(self, message: dict[str, Any]) -> None:
        if self._posts is None or self.closed.is_set():
            raise UpstreamGone(self.name, self.close_reason or "not connected")
        try:
            async with self._posts.post(self._post_headers, orjson.dumps(message)) as response:
                await response.read()
                if response.status >= 400:
                    raise UpstreamGone(self.name, f"message endpoint answered HTTP {response.status}")
        except MessageTooLarge:
            raise too_large(self.name, self._max_message) from None
        except Http1Error as exc:
            raise UpstreamGone(self.name, str(exc)) from None

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        self._pending.fail_all("connection closed")
        self.mark_lost("closed by the gateway")
        if self._posts is not None:
            self._posts.close()
        if self._http is not None:
            await self._http.close()


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _shown_origin(url: str) -> str:
    """scheme://host:port only: the path and query of an endpoint may carry a session secret."""
    origin = _origin(url)
    if origin is None:
        return "an unparseable URL"
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"
