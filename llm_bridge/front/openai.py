"""The OpenAI-compatible routes: chat completions (whole and streamed), embeddings, the Responses API
(passed through to backends that speak it) and the model list."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..assemble import StreamAssembler
from ..bridge import Bridge
from ..errors import BridgeError
from ..exchange import Exchange
from ..providers.base import Answer, Chunk, Stream
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
        answer, served = await bridge.router.serve(resolved, lambda p, m: p.chat(request, m, extra))
        exchange.served_by(served)
        data = answer.data
        exchange.response_model = data.get("model") or served.model
        exchange.response = data
        bridge.account(exchange, Usage.of(data.get("usage")))
        body = answer.body if answer.body is not None else orjson.dumps(data)
        await bridge.settle(exchange)
        await http.send_json(send, 200, body, backend_headers(served))
        return
    stream, served = await bridge.router.serve(resolved, lambda p, m: p.chat_stream(request, m, extra))
    exchange.served_by(served)
    wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    await pump(bridge, exchange, stream, send, receive, served, wants_usage)


async def pump(
    bridge: Bridge, exchange: Exchange, stream: Stream, send: Any, receive: Any, served: Served, wants_usage: bool
) -> None:
    """Forward a chat stream; read usage, the response model and the first token on the way."""
    assembler = StreamAssembler() if bridge.record_responses else None
    await http.start_stream(send, backend_headers(served))
    async with http.client_watch(receive) as gone:
        try:
            async for chunk in _with_first(stream):
                data = chunk.data
                usage = data.get("usage")
                if usage:
                    bridge.account(exchange, Usage.of(usage))
                if exchange.response_model is None and data.get("model"):
                    exchange.response_model = data["model"]
                if assembler is not None:
                    assembler.add(data)
                choices = data.get("choices")
                if not choices:
                    if usage and not wants_usage:
                        continue  # the usage chunk the bridge asked for on its own account
                elif exchange.first_token is None:
                    exchange.first_token = time.monotonic()
                await http.send_event(send, chunk.raw or b"data: " + orjson.dumps(data) + b"\n\n")
        except BridgeError as exc:
            exchange.error, exchange.status = exc, exc.status
            await http.end_stream(send, b"data: " + exc.openai_body() + b"\n\n")
            return
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            http.client_gone(exchange)
            return
        finally:
            await stream.close()
            if assembler is not None:
                exchange.response = assembler.result()
    await bridge.settle(exchange)
    await http.end_stream(send, _DONE)


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
    exchange.response_model = data.get("model") or served.model
    exchange.response = data
    bridge.account(exchange, Usage.of(data.get("usage")))
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
        exchange.response = result.data
        exchange.response_model = result.data.get("model")
        bridge.account(exchange, responses_usage(result.data.get("usage")))
        await bridge.settle(exchange)
        await http.send_json(send, 200, result.body or orjson.dumps(result.data), backend_headers(served))
        return
    await http.start_stream(send, backend_headers(served))
    async with http.client_watch(receive) as gone:
        try:
            async for chunk in _with_first(result):
                event = chunk.data
                kind = event.get("type", "")
                if exchange.first_token is None and kind.endswith(".delta"):
                    exchange.first_token = time.monotonic()
                if kind in ("response.completed", "response.incomplete", "response.failed"):
                    body = event.get("response") or {}
                    exchange.response = body
                    exchange.response_model = body.get("model")
                    bridge.account(exchange, responses_usage(body.get("usage")))
                await http.send_event(send, chunk.raw or b"data: " + orjson.dumps(event) + b"\n\n")
        except BridgeError as exc:
            exchange.error, exchange.status = exc, exc.status
            error = {"type": "error", "code": exc.code or exc.type, "message": exc.message, "param": None}
            await http.end_stream(send, b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
            return
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            http.client_gone(exchange)
            return
        finally:
            await result.close()
    await bridge.settle(exchange)
    await http.end_stream(send)


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


async def _with_first(stream: Stream) -> AsyncIterator[Chunk]:
    if stream.first is not None:
        yield stream.first
    async for chunk in stream.chunks:
        yield chunk
