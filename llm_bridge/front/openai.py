"""The OpenAI-compatible routes: chat completions (whole and streamed), embeddings, the Responses API
(passed through to backends that speak it) and the model list."""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..assemble import StreamAssembler
from ..bridge import Bridge
from ..errors import BridgeError
from ..exchange import Exchange
from ..providers.base import Answer, Stream
from ..router import Served
from ..usage import Usage
from . import http
from .http import required

_DONE = b"data: [DONE]\n\n"


def backend_headers(served: Served) -> list[tuple[bytes, bytes]]:
    return [(b"x-gateway-backend", served.backend.encode()), (b"x-gateway-model", served.model.encode())]


async def chat_completions(bridge: Bridge, exchange: Exchange, send: Any, receive: Any) -> None:
    request = exchange.request
    required(request, "messages", list)
    resolved = bridge.resolve(exchange)
    await bridge.hooks.admit(exchange)
    extra = bridge.hooks.outgoing_headers(exchange)
    if not exchange.stream:
        answer, served = await bridge.chat(exchange, resolved, extra)
        body = answer.body if answer.body is not None else orjson.dumps(answer.data)
        await bridge.settle(exchange)
        await http.send_json(send, 200, body, backend_headers(served))
        return
    stream, served = await bridge.router.serve(resolved, lambda p, m: p.chat_stream(request, m, extra))
    exchange.served_by(served)
    wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    assembler = StreamAssembler() if bridge.record_responses else None

    async def forward() -> None:
        """Chunks go out as they came; usage, the response model and the first token are read on the way."""
        try:
            async for chunk in stream.each():
                data = chunk.data
                bridge.observe(exchange, data, assembler)
                if not data.get("choices") and data.get("usage") and not wants_usage:
                    continue  # the usage chunk the bridge asked for on its own account
                await http.send_event(send, chunk.raw or b"data: " + orjson.dumps(data) + b"\n\n")
        finally:
            if assembler is not None:
                exchange.response = assembler.result()

    await http.relay(bridge, exchange, stream, send, receive, backend_headers(served), forward, _chat_error, _DONE)


def _chat_error(exc: BridgeError) -> bytes:
    return b"data: " + exc.openai_body() + b"\n\n"


async def embeddings(bridge: Bridge, exchange: Exchange, send: Any, receive: Any) -> None:
    request = exchange.request
    if "input" not in request:
        raise BridgeError(400, "'input' is required", param="input")
    resolved = bridge.resolve(exchange)
    await bridge.hooks.admit(exchange)
    extra = bridge.hooks.outgoing_headers(exchange)
    answer, served = await bridge.router.serve(resolved, lambda p, m: p.embeddings(request, m, extra))
    exchange.served_by(served)
    data = answer.data
    bridge.answered(exchange, data, Usage.of(data.get("usage")), served.model)
    await bridge.settle(exchange)
    await http.send_json(send, 200, answer.body or orjson.dumps(data), backend_headers(served))


async def responses(bridge: Bridge, exchange: Exchange, send: Any, receive: Any) -> None:
    """The Responses API, passed through unchanged to a backend that speaks it."""
    request = exchange.request
    resolved = bridge.resolve(exchange)
    await bridge.hooks.admit(exchange)
    extra = bridge.hooks.outgoing_headers(exchange)
    stream = exchange.stream

    async def operation(provider: Any, model: str) -> Answer | Stream:
        return await provider.native("responses", request, model, stream, extra)

    result, served = await bridge.router.serve(resolved, operation)
    exchange.served_by(served)
    if isinstance(result, Answer):
        bridge.answered(exchange, result.data, responses_usage(result.data.get("usage")), None)
        await bridge.settle(exchange)
        await http.send_json(send, 200, result.body or orjson.dumps(result.data), backend_headers(served))
        return

    async def forward() -> None:
        async for chunk in result.each():
            event = chunk.data
            kind = event.get("type", "")
            if exchange.first_token is None and kind.endswith(".delta"):
                exchange.first_token = time.monotonic()
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                body = event.get("response") or {}
                bridge.answered(exchange, body, responses_usage(body.get("usage")), None)
            await http.send_event(send, chunk.raw or b"data: " + orjson.dumps(event) + b"\n\n")

    await http.relay(bridge, exchange, result, send, receive, backend_headers(served), forward, _responses_error)


def _responses_error(exc: BridgeError) -> bytes:
    error = {"type": "error", "code": exc.code or exc.type, "message": exc.message, "param": None}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


def responses_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
    )


def model_list(bridge: Bridge, caller: Any, anthropic_shape: bool) -> bytes:
    names = bridge.models(caller)
    data = [_model(bridge, name, anthropic_shape) for name in names]
    if anthropic_shape:  # the anthropic SDK's models.list() reads this page shape from the same path
        first, last = (names[0], names[-1]) if names else (None, None)
        return orjson.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last})
    return orjson.dumps({"object": "list", "data": data})


def model_entry(bridge: Bridge, name: str, anthropic_shape: bool) -> bytes:
    return orjson.dumps(_model(bridge, name, anthropic_shape))


def _model(bridge: Bridge, name: str, anthropic_shape: bool) -> dict[str, Any]:
    if anthropic_shape:
        return {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
    resolved = bridge.router.resolve(name)
    owner = resolved.route.targets[0].backend if resolved is not None else "gateway"
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}
