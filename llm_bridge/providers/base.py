"""What every provider shares: one keep-alive HTTP pool per backend, timeouts, and turning transport
failures and error statuses into `BridgeError`s that name the backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from ..config import Backend
from ..errors import BridgeError, openai_error_of

ErrorReader = Callable[[int, bytes, Any], tuple[str, str]]
Headers = dict[str, str] | None  # per-request headers (trace context) added to the backend request


@dataclass(slots=True)
class Answer:
    """A whole (non-streaming) answer: `data` in canonical shape, `body` the bytes to send unchanged
    when the client speaks the backend's wire format (None: serialise `data`)."""

    data: dict[str, Any]
    body: bytes | None = None


@dataclass(slots=True)
class Chunk:
    """One streamed piece: `data` a canonical chunk (or a native event for pass-through streams), `raw`
    the SSE event bytes to forward unchanged when the client speaks the backend's wire format."""

    data: dict[str, Any]
    raw: bytes | None = None
    event: str | None = None


@dataclass(slots=True)
class Stream:
    """An opened streaming answer: the first chunk has arrived (so the backend is committed to)."""

    chunks: AsyncIterator[Chunk]
    first: Chunk | None
    meta: dict[str, Any] = field(default_factory=dict)  # what the provider learnt opening it (e.g. model)

    async def each(self) -> AsyncIterator[Chunk]:
        """Every chunk: the one that opened the stream, then the rest."""
        if self.first is not None:
            yield self.first
        async for chunk in self.chunks:
            yield chunk

    async def close(self) -> None:
        """Release the backend connection now (a stream left early is not read to its end)."""
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class Provider:
    """One backend. Subclasses implement the operations their provider has; the rest answer 400."""

    kind = "base"
    speaks = "openai"  # the front door whose wire format this backend speaks natively

    def __init__(self, name: str, config: Backend) -> None:
        self.name = name
        self.config = config
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.config.max_connections, keepalive_timeout=60, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout),
            skip_auto_headers=("User-Agent",),
        )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # Operations (canonical in, canonical out). `model` is the model id this backend gets.
    async def chat(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        raise self.unsupported("chat completions")

    async def chat_stream(self, request: dict[str, Any], model: str, extra: Headers = None) -> Stream:
        raise self.unsupported("streaming chat completions")

    async def embeddings(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        raise self.unsupported("embeddings")

    async def native(
        self, operation: str, request: dict[str, Any], model: str, stream: bool, extra: Headers = None
    ) -> Answer | Stream:
        """The backend's own API (OpenAI Responses, Anthropic Messages), passed through."""
        raise self.unsupported(operation)

    def unsupported(self, what: str) -> BridgeError:
        return BridgeError(400, f"backend '{self.name}' ({self.kind}) does not offer {what}", backend=self.name)

    # HTTP, shared by the subclasses.
    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise BridgeError(503, f"backend '{self.name}' is not started", backend=self.name)
        return self._http

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], read_error: ErrorReader | None = None
    ) -> tuple[bytes, dict[str, Any]]:
        """POST and read the whole answer within the backend's timeout; the answer body and its parsed JSON."""
        try:
            async with asyncio.timeout(self.config.timeout):
                async with self.http.post(url, data=body, headers=headers) as response:
                    payload = await response.read()
                    if response.status >= 400:
                        raise self.error(response.status, payload, response.headers, read_error)
        except TimeoutError:
            raise BridgeError(
                504, f"backend '{self.name}' did not answer within {self.config.timeout:g} s", backend=self.name
            ) from None
        except aiohttp.ClientError as exc:
            raise self.unreachable(exc) from None
        try:
            return payload, orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise BridgeError(502, f"backend '{self.name}' answered with invalid JSON", backend=self.name) from None

    async def open(
        self, url: str, body: bytes, headers: dict[str, str], read_error: ErrorReader | None = None
    ) -> aiohttp.ClientResponse:
        """POST for a stream: returns once the status is known to be a success (within first_token_timeout)."""
        try:
            async with asyncio.timeout(self.config.first_token_timeout):
                response = await self.http.post(url, data=body, headers=headers)
                if response.status >= 400:
                    try:
                        payload = await response.read()
                    finally:
                        response.release()
                    raise self.error(response.status, payload, response.headers, read_error)
                return response
        except TimeoutError:
            raise self.silent() from None
        except aiohttp.ClientError as exc:
            raise self.unreachable(exc) from None

    async def read_chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The answer's bytes as they come; a backend silent for idle_timeout ends the stream with an error."""
        content = response.content
        idle = self.config.idle_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        data = await content.readany()
                except TimeoutError:
                    raise BridgeError(
                        504, f"backend '{self.name}' went silent for {idle:g} s mid-stream", backend=self.name
                    ) from None
                except aiohttp.ClientError as exc:
                    raise self.unreachable(exc) from None
                if not data:
                    return
                yield data
        finally:
            response.release()

    def error(self, status: int, payload: bytes, headers: Any, read_error: ErrorReader | None) -> BridgeError:
        kind, message = read_error(status, payload, headers) if read_error else openai_error_of(status, payload)
        retry_after = _retry_after(headers.get("retry-after"))
        return BridgeError(status, message, type=kind, backend=self.name, retry_after=retry_after)

    def unreachable(self, exc: BaseException) -> BridgeError:
        return BridgeError(502, f"backend '{self.name}' unreachable: {type(exc).__name__}", backend=self.name)

    def silent(self) -> BridgeError:
        limit = self.config.first_token_timeout
        return BridgeError(504, f"backend '{self.name}' sent nothing within {limit:g} s", backend=self.name)


async def first_of(chunks: AsyncIterator[Chunk], provider: Provider) -> Chunk | None:
    """The stream's first chunk within the backend's first_token_timeout (so a hanging backend can be left)."""
    try:
        async with asyncio.timeout(provider.config.first_token_timeout):
            return await anext(chunks, None)
    except TimeoutError:
        raise provider.silent() from None


async def opened(chunks: AsyncIterator[Chunk], provider: Provider, **meta: Any) -> Stream:
    first = await first_of(chunks, provider)
    return Stream(chunks, first, meta)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def merged(headers: dict[str, str], extra: Headers) -> dict[str, str]:
    return {**headers, **extra} if extra else headers
