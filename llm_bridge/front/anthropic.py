"""The Anthropic-compatible `/v1/messages`: passed through to Anthropic backends, translated through the
canonical model to every other backend, streaming included."""

from __future__ import annotations

from typing import Any

import orjson

from ..assemble import StreamAssembler
from ..bridge import Bridge
from ..errors import BridgeError
from ..exchange import Exchange
from ..providers.base import Answer, Provider, Stream
from ..translate import anthropic as translate
from ..translate.anthropic_stream import StreamFromChat, StreamToChat
from ..usage import Usage
from . import http
from .http import required
from .openai import backend_headers


def error_body(exc: BridgeError) -> bytes:
    return orjson.dumps(translate.error_body(exc.status, exc.message))


def _native_headers(exchange: Exchange, extra: dict[str, str] | None) -> dict[str, str] | None:
    """What an Anthropic backend gets from the client's own headers: the betas it opted into."""
    beta = exchange.headers.get(b"anthropic-beta")
    if beta is None:
        return extra
    return {**(extra or {}), "anthropic-beta": beta.decode("latin-1")}


async def count_tokens(bridge: Bridge, exchange: Exchange, send: Any, receive: Any) -> None:
    """`/v1/messages/count_tokens`, answered by an Anthropic backend (others have no such endpoint)."""
    request = exchange.request
    required(request, "messages", list)
    resolved = bridge.resolve(exchange)
    await bridge.hooks.admit(exchange)
    extra = _native_headers(exchange, bridge.hooks.outgoing_headers(exchange))

    async def operation(provider: Provider, model: str) -> Answer | Stream:
        return await provider.native("count_tokens", request, model, False, extra)

    result, served = await bridge.router.serve(resolved, operation)
    exchange.served_by(served)
    assert isinstance(result, Answer)
    exchange.response = result.data
    await http.send_json(send, 200, result.body or orjson.dumps(result.data), backend_headers(served))


async def messages(bridge: Bridge, exchange: Exchange, send: Any, receive: Any) -> None:
    request = exchange.request
    required(request, "messages", list)
    resolved = bridge.resolve(exchange)
    await bridge.hooks.admit(exchange)
    extra = bridge.hooks.outgoing_headers(exchange)
    native_extra = _native_headers(exchange, extra)
    stream = exchange.stream
    chat: dict[str, Any] | None = None  # the canonical request, made once if a non-Anthropic backend serves

    async def operation(provider: Provider, model: str) -> Answer | Stream:
        nonlocal chat
        if provider.speaks == "anthropic":
            return await provider.native("messages", request, model, stream, native_extra)
        if chat is None:
            chat = translate.chat_request(request)
        if stream:
            return await provider.chat_stream({**chat, "stream": True}, model, extra)
        return await provider.chat(chat, model, extra)

    result, served = await bridge.router.serve(resolved, operation)
    exchange.served_by(served)
    native = served.provider.speaks == "anthropic"
    if isinstance(result, Answer):
        data = result.data
        canonical = translate.chat_response(data) if native else data
        bridge.answered(exchange, canonical, Usage.of(canonical.get("usage")), served.model)
        answer = data if native else translate.anthropic_response(canonical)
        if bridge.record_responses:
            exchange.client_response = answer
        body = result.body if native and result.body else orjson.dumps(answer)
        await bridge.settle(exchange)
        await http.send_json(send, 200, body, backend_headers(served))
        return
    await _pump(bridge, exchange, result, native, send, receive, backend_headers(served))


async def _pump(
    bridge: Bridge,
    exchange: Exchange,
    stream: Stream,
    native: bool,
    send: Any,
    receive: Any,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Native events go out as they came (and are read through the translator for usage and traces);
    canonical chunks are turned into Anthropic events."""
    to_chat = StreamToChat(include_usage=True) if native else None
    to_anthropic = None if native else StreamFromChat(exchange.original_model)
    assembler = StreamAssembler() if bridge.record_responses else None

    async def forward() -> None:
        try:
            async for chunk in stream.each():
                if to_chat is not None:
                    canonical = to_chat.feed(chunk.event or chunk.data.get("type", ""), chunk.data)
                    await http.send_event(send, chunk.raw or _event(chunk.event or "", chunk.data))
                else:
                    canonical = [chunk.data]
                    for name, event in to_anthropic.feed(chunk.data):  # type: ignore[union-attr]
                        await http.send_event(send, _event(name, event))
                for data in canonical:
                    bridge.observe(exchange, data, assembler)
            if to_anthropic is not None:
                for name, event in to_anthropic.finish():
                    await http.send_event(send, _event(name, event))
        finally:
            if assembler is not None:
                exchange.response = assembler.result()
                # The message the client put together from its events.
                exchange.client_response = translate.anthropic_response(exchange.response)

    await http.relay(bridge, exchange, stream, send, receive, headers, forward, _stream_error)


def _stream_error(exc: BridgeError) -> bytes:
    return _event("error", translate.error_body(exc.status, exc.message))


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
