"""Anthropic Messages: chat completions are translated; `/v1/messages` requests pass through natively."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from ..config import DEFAULT_BASE_URLS
from ..errors import BridgeError
from ..sse import SseSplitter
from ..translate import anthropic as translate
from ..translate.anthropic_stream import StreamError, StreamToChat
from .base import Answer, Chunk, Headers, Provider, Stream, merged, opened

API_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    kind = "anthropic"
    speaks = "anthropic"

    async def start(self) -> None:
        await super().start()
        base = (self.config.base_url or DEFAULT_BASE_URLS["anthropic"]).rstrip("/")
        self._url = f"{base}/v1/messages"
        self._count_url = f"{base}/v1/messages/count_tokens"
        self._headers = {"content-type": "application/json", "anthropic-version": API_VERSION, **self.config.headers}
        if self.config.api_key:
            self._headers["x-api-key"] = self.config.api_key
        self._stream_headers = {**self._headers, "accept": "text/event-stream"}

    async def chat(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        body = orjson.dumps(translate.anthropic_request(request, model))
        _, data = await self.post(self._url, body, merged(self._headers, extra), _read_error)
        return Answer(translate.chat_response(data))

    async def chat_stream(self, request: dict[str, Any], model: str, extra: Headers = None) -> Stream:
        body = orjson.dumps(translate.anthropic_request({**request, "stream": True}, model))
        response = await self.open(self._url, body, merged(self._stream_headers, extra), _read_error)
        return await opened(self._translated(response), self)

    async def native(
        self, operation: str, request: dict[str, Any], model: str, stream: bool, extra: Headers = None
    ) -> Answer | Stream:
        if operation not in ("messages", "count_tokens"):
            raise self.unsupported(operation)
        outgoing = request if request.get("model") == model else {**request, "model": model}
        body = orjson.dumps(outgoing)
        if operation == "count_tokens":
            payload, data = await self.post(self._count_url, body, merged(self._headers, extra), _read_error)
            return Answer(data, payload)
        if not stream:
            payload, data = await self.post(self._url, body, merged(self._headers, extra), _read_error)
            return Answer(data, payload)
        response = await self.open(self._url, body, merged(self._stream_headers, extra), _read_error)
        return await opened(self._events(response), self)

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        """Native events, raw bytes kept; an `error` event becomes a BridgeError like any backend error."""
        splitter = SseSplitter()
        async for data in self.read_chunks(response):
            for item in splitter.feed(data):
                event = orjson.loads(item.data)
                if item.event == "error":
                    raise self._stream_error(event)
                yield Chunk(event, item.raw, item.event)

    async def _translated(self, response: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        translator = StreamToChat(include_usage=True)
        async for native in self._events(response):
            try:
                chunks = translator.feed(native.event or native.data.get("type", ""), native.data)
            except StreamError as exc:
                raise BridgeError(502, str(exc), backend=self.name) from None
            for chunk in chunks:
                yield Chunk(chunk)

    def _stream_error(self, event: dict[str, Any]) -> BridgeError:
        error = event.get("error") or {}
        kind = error.get("type", "api_error")
        status = 529 if kind == "overloaded_error" else 429 if kind == "rate_limit_error" else 500
        return BridgeError(status, str(error.get("message", "stream error")), type=kind, backend=self.name)


def _read_error(status: int, payload: bytes, _headers: Any) -> tuple[str, str]:
    return translate.error_of(status, payload)
