"""Google Gemini (AI Studio, API key) and Vertex AI (project and location, OAuth access token):
generateContent, streamGenerateContent over SSE, and batch embeddings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ..config import DEFAULT_BASE_URLS
from ..errors import BridgeError
from ..sse import SseSplitter
from ..translate import gemini as translate
from .base import Answer, Chunk, Headers, Provider, Stream, merged, opened


class GeminiProvider(Provider):
    kind = "gemini"
    call_ids = True  # the Gemini API takes functionCall ids; Vertex rejects them on some versions

    async def start(self) -> None:
        await super().start()
        base = (self.config.base_url or DEFAULT_BASE_URLS["gemini"]).rstrip("/")
        self._models = f"{base}/v1beta/models/"
        self._headers = {"content-type": "application/json", **self.config.headers}
        if self.config.api_key:
            self._headers["x-goog-api-key"] = self.config.api_key

    def url(self, model: str, operation: str) -> str:
        return f"{self._models}{quote(model, safe='')}:{operation}"

    async def chat(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        body = orjson.dumps(self._request(request, model))
        _, data = await self.post(self.url(model, "generateContent"), body, merged(self._headers, extra), _read_error)
        return Answer(translate.chat_response(data, model))

    async def chat_stream(self, request: dict[str, Any], model: str, extra: Headers = None) -> Stream:
        body = orjson.dumps(self._request(request, model))
        url = self.url(model, "streamGenerateContent") + "?alt=sse"
        response = await self.open(url, body, merged(self._headers, extra), _read_error)
        return await opened(self._chunks(response, model), self)

    async def embeddings(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        try:
            payload = translate.embeddings_request(request, model)
        except ValueError as exc:
            raise BridgeError(400, str(exc), param="input") from None
        url = self.url(model, "batchEmbedContents")
        _, data = await self.post(url, orjson.dumps(payload), merged(self._headers, extra), _read_error)
        encoding = request.get("encoding_format")
        return Answer(translate.embeddings_response(data, model, encoding_format=encoding))

    def _request(self, request: dict[str, Any], model: str) -> dict[str, Any]:
        return translate.gemini_request({**request, "model": model}, function_call_ids=self.call_ids)

    async def _chunks(self, response: aiohttp.ClientResponse, model: str) -> AsyncIterator[Chunk]:
        splitter = SseSplitter()
        translator = translate.StreamToChat(model, include_usage=True)
        async for data in self.read_chunks(response):
            for item in splitter.feed(data):
                for chunk in translator.feed(orjson.loads(item.data)):
                    yield Chunk(chunk)
        for item in splitter.close():
            for chunk in translator.feed(orjson.loads(item.data)):
                yield Chunk(chunk)
        for chunk in translator.finish():
            yield Chunk(chunk)


class VertexProvider(GeminiProvider):
    kind = "vertex"
    call_ids = False

    async def start(self) -> None:
        await super().start()
        config = self.config
        base = (config.base_url or f"https://{config.region}-aiplatform.googleapis.com").rstrip("/")
        self._models = f"{base}/v1/projects/{config.project}/locations/{config.region}/publishers/google/models/"
        self._headers.pop("x-goog-api-key", None)
        if config.api_key:
            self._headers["authorization"] = f"Bearer {config.api_key}"


def _read_error(status: int, payload: bytes, _headers: Any) -> tuple[str, str]:
    return translate.error_of(status, payload)
