"""AWS Bedrock: Converse and ConverseStream (SigV4-signed, event-stream framed), Titan embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from ..aws.eventstream import EventStreamDecoder, EventStreamError
from ..aws.sigv4 import sign, uri_encode
from ..errors import BridgeError
from ..translate import bedrock as translate
from .base import Answer, Chunk, Headers, Provider, Stream, opened

# A stream's exception events, by the ':exception-type' header, and the status each stands for.
_EXCEPTION_STATUS = {
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "modelStreamErrorException": 502,
    "internalServerException": 500,
    "validationException": 400,
    "modelTimeoutException": 504,
}


class BedrockProvider(Provider):
    kind = "bedrock"

    async def start(self) -> None:
        await super().start()
        config = self.config
        self._base = (config.base_url or f"https://bedrock-runtime.{config.region}.amazonaws.com").rstrip("/")
        self._region = config.region or "us-east-1"
        self._headers = {"content-type": "application/json", **config.headers}

    async def chat(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        url, body, headers = self._signed(translate.model_path(model), _converse(request), extra)
        _, data = await self.post(url, body, headers, _read_error)  # type: ignore[arg-type]
        return Answer(translate.chat_response(data, model))

    async def chat_stream(self, request: dict[str, Any], model: str, extra: Headers = None) -> Stream:
        path = translate.model_path(model, stream=True)
        url, body, headers = self._signed(path, _converse(request), extra, accept="application/vnd.amazon.eventstream")
        response = await self.open(url, body, headers, _read_error)  # type: ignore[arg-type]
        return await opened(self._chunks(response, model), self)

    async def embeddings(self, request: dict[str, Any], model: str, extra: Headers = None) -> Answer:
        """Titan embeds one text per call: the inputs go out concurrently and come back in order."""
        inputs = request.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise BridgeError(400, "bedrock embeddings take text input (a string or a list of strings)", param="input")
        path = f"/model/{uri_encode(model)}/invoke"

        async def one(text: str) -> dict[str, Any]:
            payload = translate.titan_embeddings_request(text, request.get("dimensions"))
            url, body, headers = self._signed(path, payload, extra)
            return (await self.post(url, body, headers, _read_error))[1]  # type: ignore[arg-type]

        bodies = await asyncio.gather(*(one(text) for text in texts))
        return Answer(translate.titan_embeddings_response(list(bodies), model))

    def _signed(
        self, path: str, payload: dict[str, Any], extra: Headers, accept: str = "application/json"
    ) -> tuple[URL, bytes, dict[str, str]]:
        url = self._base + path
        body = orjson.dumps(payload)
        headers = {**self._headers, "accept": accept, **(extra or {})}
        config = self.config
        headers.update(
            sign(
                "POST",
                url,
                headers,
                body,
                region=self._region,
                service="bedrock",
                access_key=config.aws_access_key_id or "",
                secret_key=config.aws_secret_access_key or "",
                session_token=config.aws_session_token,
            )
        )
        return URL(url, encoded=True), body, headers  # encoded: the signed path must go out byte for byte

    async def _chunks(self, response: aiohttp.ClientResponse, model: str) -> AsyncIterator[Chunk]:
        decoder = EventStreamDecoder()
        translator = translate.StreamToChat(model, include_usage=True)
        async for data in self.read_chunks(response):
            try:
                messages = decoder.feed(data)
            except EventStreamError as exc:
                raise BridgeError(502, f"backend '{self.name}' sent a broken event stream: {exc}") from None
            for message in messages:
                headers = message.headers
                if headers.get(":message-type") != "event":
                    raise self._stream_error(headers, message.payload)
                payload = orjson.loads(message.payload) if message.payload else {}
                for chunk in translator.feed(str(headers.get(":event-type", "")), payload):
                    yield Chunk(chunk)

    def _stream_error(self, headers: dict[str, Any], payload: bytes) -> BridgeError:
        name = str(headers.get(":exception-type") or headers.get(":error-code") or "internalServerException")
        status = _EXCEPTION_STATUS.get(name, 500)
        kind, message = translate.error_of(status, payload, name)
        message = str(headers.get(":error-message") or message)  # error frames carry their text in a header
        return BridgeError(status, message, type=kind, backend=self.name)


def _converse(request: dict[str, Any]) -> dict[str, Any]:
    try:
        return translate.converse_request(request)
    except translate.UnsupportedContent as exc:
        raise BridgeError(400, str(exc)) from None


def _read_error(status: int, payload: bytes, headers: Any) -> tuple[str, str]:
    return translate.error_of(status, payload, headers.get("x-amzn-errortype"))
