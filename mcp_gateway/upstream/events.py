"""What the pool tells the rest of the gateway about its upstreams: one connected (or reconnected), one
lost, and a notification one sent that is not about a call in flight (list changes, resource updates).
Listeners subscribe at assembly; a failing listener is logged and never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pool import UpstreamHandle

log = logging.getLogger("mcp_gateway.upstream")

HandleListener = Callable[["UpstreamHandle"], Awaitable[None]]
NotificationListener = Callable[["UpstreamHandle", str, dict[str, Any]], Awaitable[None]]


class UpstreamEvents:
    def __init__(self) -> None:
        self._up: list[HandleListener] = []
        self._down: list[HandleListener] = []
        self._notified: list[NotificationListener] = []

    def on_up(self, listener: HandleListener) -> None:
        self._up.append(listener)

    def on_down(self, listener: HandleListener) -> None:
        self._down.append(listener)

    def on_notification(self, listener: NotificationListener) -> None:
        self._notified.append(listener)

    async def up(self, handle: UpstreamHandle) -> None:
        for listener in self._up:
            await _quietly(listener(handle))

    async def down(self, handle: UpstreamHandle) -> None:
        for listener in self._down:
            await _quietly(listener(handle))

    async def notified(self, handle: UpstreamHandle, method: str, params: dict[str, Any]) -> None:
        for listener in self._notified:
            await _quietly(listener(handle, method, params))


async def _quietly(pending: Awaitable[None]) -> None:
    try:
        await pending
    except Exception:
        log.exception("an upstream event listener failed")
