"""ASGI plumbing shared by both eras of the HTTP front: reading bodies, plain responses, and the
per-request response stream that turns into SSE when a call emits something before its result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..jsonrpc import INVALID_REQUEST, McpError, error_message, notification
from . import sse

MAX_BODY = 4 * 1024 * 1024
_JSON = (b"content-type", b"application/json")

Header = tuple[bytes, bytes]
# Sends a server-to-client request on this stream and returns the client's answer.
Asker = Callable[[str, dict[str, Any], "ResponseStream"], Awaitable[dict[str, Any]]]


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def read_body(receive: Any) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def send_json(send: Any, status: int, body: bytes, extra: list[Header] | None = None) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Any, status: int, request_id: Any, error: McpError, extra: list[Header] | None = None
) -> None:
    await send_json(send, status, error_message(request_id, error), extra)


async def send_accepted(send: Any) -> None:
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def send_empty(send: Any, status: int, extra: list[Header] | None = None) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0"), *(extra or [])]}
    )
    await send({"type": "http.response.body", "body": b""})


async def wait_disconnect(receive: Any, queue: asyncio.Queue[bytes]) -> None:
    """Put an empty item on `queue` when the client goes away (ends a long-lived stream)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(b"")
            return


class ResponseStream:
    """The `CallSink` of one POST: plain JSON until the call emits something, then SSE.

    `asker` sends server-to-client requests (handshake era only; None refuses them, as 2026-07-28
    streams must never carry requests).
    """

    __slots__ = ("_asker", "_closed", "_headers", "_lock", "_send", "_started")

    def __init__(self, send: Any, headers: list[Header], asker: Asker | None) -> None:
        self._send = send
        self._headers = headers
        self._asker = asker
        self._started = False
        self._closed = False
        self._lock = asyncio.Lock()

    async def write(self, data: bytes) -> None:
        async with self._lock:
            if self._closed:
                return
            try:
                if not self._started:
                    await self._send(
                        {"type": "http.response.start", "status": 200, "headers": [*sse.SSE_HEADERS, *self._headers]}
                    )
                    self._started = True
                await self._send({"type": "http.response.body", "body": data, "more_body": True})
            except OSError:
                self._closed = True

    @property
    def started(self) -> bool:
        """Has the response begun (as SSE)? Then its status can no longer change."""
        return self._started

    @property
    def send(self) -> Any:
        return self._send

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.write(sse.event(orjson.dumps(notification(method, params))))

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._asker is None:
            raise McpError(INVALID_REQUEST, f"{method} cannot be sent on a 2026-07-28 response stream")
        return await self._asker(method, params, self)

    async def finish(self, payload: bytes, status: int = 200) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._started:
                    await self._send({"type": "http.response.body", "body": sse.event(payload), "more_body": False})
                else:
                    await send_json(self._send, status, payload, self._headers)
            except OSError:
                pass
