"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp), and Azure OpenAI: the canonical
wire format, so requests and answers pass through; only the model name and stream options change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ..config import DEFAULT_BASE_URLS
from ..sse import SseSplitter
from .base import Answer, Chunk, Headers, Provider, Stream, merged, opened

_DONE = b"[DONE]"


class OpenAIProvider(Provider):
    kind = "openai"
    speaks = "openai"

    async def start(self) -> None:
        await super().start()
        base = (self.config.base_url or DEFAULT_BASE_URLS["openai"]).rstrip("/")
        self._base = base
        self._headers = {"content-type": "application/json", **self.config.headers}
        if self.config.api_key:
            self._headers["authorization"] = f"Bearer {self.config.api_key}"
        self._stream_headers = {**self._headers, "accept": "text/event-stream"}

    def url(self, operation: str, model: str) -> str:
        return f"{self._base}/{operation}"

    async def chat(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        body = orjson.dumps(_with_model(request, model))
        payload, data = await self.post(self.url("chat/completions", model), body, merged(self._headers, extra))
        return Answer(data, payload)

    async def chat_stream(self, request: dict[str, Any], model: str, extra: Headers = None) -> Stream:
        outgoing = _with_model(request, model)
        # Ask for usage so budgets and traces have it; the front drops the extra chunk if the client did not ask.
        outgoing["stream_options"] = {**(request.get("stream_options") or {}), "include_usage": True}
        response = await self.open(
            self.url("chat/completions", model), orjson.dumps(outgoing), merged(self._stream_headers, extra)
        )
        return await opened(self._chunks(response), self)

    async def embeddings(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        body = orjson.dumps(_with_model(request, model))
        payload, data = await self.post(self.url("embeddings", model), body, merged(self._headers, extra))
        return Answer(data, payload)

    async def native(
        self, operation: str, request: dict[str, Any], model: str, stream: bool, extra: Headers = None
    ) -> Answer | Stream:
        if operation != "responses":
            raise self.unsupported(operation)
        body = orjson.dumps(_with_model(request, model))
        url = self.url("responses", model)
        if not stream:
            payload, data = await self.post(url, body, merged(self._headers, extra))
            return Answer(data, payload)
        response = await self.open(url, body, merged(self._stream_headers, extra))
        return await opened(self._chunks(response), self)

    async def _chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        splitter = SseSplitter()
        async for data in self.read_chunks(response):
            for item in splitter.feed(data):
                if item.data == _DONE:
                    continue
                yield Chunk(orjson.loads(item.data), item.raw, item.event)
        for item in splitter.close():
            if item.data != _DONE:
                yield Chunk(orjson.loads(item.data), item.raw, item.event)


class AzureOpenAIProvider(OpenAIProvider):
    """Azure names the deployment in the path and authenticates with `api-key`."""

    kind = "azure"

    async def start(self) -> None:
        await super().start()
        self._headers.pop("authorization", None)
        self._stream_headers.pop("authorization", None)
        if self.config.api_key:
            self._headers["api-key"] = self._stream_headers["api-key"] = self.config.api_key
        self._version = quote(self.config.api_version)

    def url(self, operation: str, model: str) -> str:
        if operation == "responses":  # the v1 Responses API is not per deployment
            return f"{self._base}/openai/v1/responses"
        return f"{self._base}/openai/deployments/{quote(model, safe='')}/{operation}?api-version={self._version}"


def _with_model(request: dict[str, Any], model: str) -> dict[str, Any]:
    if request.get("model") == model:
        return dict(request)
    return {**request, "model": model}
