"""The bridge's ASGI app: one route table, authentication through the host's hooks, errors in the shape
each front door's SDK expects, and the host's `finish` hook called once per request whatever happened."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..bridge import Bridge
from ..errors import BridgeError
from ..exchange import Exchange
from . import anthropic, http, openai
from .http import required

Handler = Callable[[Bridge, Exchange, Any, Any], Awaitable[None]]

# path -> (operation, front door, handler)
ROUTES: dict[str, tuple[str, str, Handler]] = {
    "/v1/chat/completions": ("chat", "openai", openai.chat_completions),
    "/v1/embeddings": ("embeddings", "openai", openai.embeddings),
    "/v1/responses": ("responses", "openai", openai.responses),
    "/v1/messages": ("messages", "anthropic", anthropic.messages),
    "/v1/messages/count_tokens": ("count_tokens", "anthropic", anthropic.count_tokens),
}
MODELS = "/v1/models"


class BridgeApp:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    @staticmethod
    def serves(path: str) -> bool:
        return path in ROUTES or path == MODELS or path.startswith(MODELS + "/")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        route = ROUTES.get(path)
        headers = dict(scope["headers"])
        front = route[1] if route is not None else ("anthropic" if b"anthropic-version" in headers else "openai")
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        exchange: Exchange | None = None
        try:
            if route is None:
                await self._models(scope, headers, front, tracked_send)
                return
            if scope["method"] != "POST":
                raise BridgeError(405, f"{path} takes POST", headers=[(b"allow", b"POST")])
            caller = await self.bridge.hooks.authenticate(headers, front)
            request = await http.read_json(receive)
            model = required(request, "model", str)
            operation, front, handler = route
            exchange = Exchange(operation, front, model, request.get("stream") is True, request, caller, headers)
            await handler(self.bridge, exchange, tracked_send, receive)
        except BridgeError as exc:
            if exchange is not None:
                exchange.error, exchange.status = exc, exc.status
            if not started:
                body = anthropic.error_body(exc) if front == "anthropic" else exc.openai_body()
                await http.send_json(send, exc.status, body, exc.headers())
        finally:
            if exchange is not None:
                exchange.ended = time.monotonic()
                await self.bridge.settle(exchange)
                await self.bridge.hooks.finish(exchange)

    async def _models(self, scope: dict[str, Any], headers: dict[bytes, bytes], front: str, send: Any) -> None:
        if scope["method"] != "GET":
            raise BridgeError(405, "the model list takes GET", headers=[(b"allow", b"GET")])
        caller = await self.bridge.hooks.authenticate(headers, front)
        path = scope["path"]
        anthropic_shape = front == "anthropic"
        if path == MODELS:
            await http.send_json(send, 200, openai.model_list(self.bridge, caller, anthropic_shape))
            return
        name = path[len(MODELS) + 1 :]
        if name not in self.bridge.models(caller):
            raise BridgeError(
                404, f"The model '{name}' does not exist or you do not have access to it.", code="model_not_found"
            )
        await http.send_json(send, 200, openai.model_entry(self.bridge, name, anthropic_shape))
