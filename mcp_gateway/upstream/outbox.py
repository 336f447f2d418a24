"""A call's progress and log notifications on their way to its client, delivered by a task of their own.

The reader of an upstream's stream (stdio and legacy SSE carry every call's messages on one stream) must
never wait for a client: a client that does not read its response stream blocks the gateway's write to it
(HTTP flow control), and a reader awaiting that write would stall every other call on the upstream. So a
call's notifications go into its outbox, which a task drains towards the client. The outbox exists only
once the call receives a notification: calls that get none (nearly all) pay nothing.

Progress and log messages are advisory (MCP basic/utilities/progress: receivers may ignore them), so a
full outbox drops its oldest; how many were dropped is logged once, when the call ends.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from .relay import Relay

log = logging.getLogger("mcp_gateway.upstream")

OUTBOX_LIMIT = 256  # notifications waiting for one slow client; older ones are dropped


class Outbox:
    __slots__ = ("_dropped", "_queue", "_relay", "_task", "_upstream")

    def __init__(self, upstream: str, relay: Relay) -> None:
        self._upstream = upstream
        self._relay = relay
        self._queue: collections.deque[tuple[bool, dict[str, Any]]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    def put(self, progress: bool, params: dict[str, Any]) -> None:
        """Queue `notifications/progress` (progress=True) or `notifications/message` params; never waits."""
        if len(self._queue) >= OUTBOX_LIMIT:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append((progress, params))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name=f"outbox:{self._upstream}")

    async def _drain(self) -> None:
        try:
            while self._queue:
                progress, params = self._queue.popleft()
                try:
                    await (self._relay.progress(params) if progress else self._relay.log(params))
                except Exception as exc:  # the client's stream broke: its loss, never the upstream's
                    log.debug("upstream %s: a notification could not reach its client: %s", self._upstream, exc)
        finally:
            self._task = None

    async def flush(self) -> None:
        """The call ended with an answer: deliver what is queued first, so the answer comes last."""
        try:
            if self._task is not None:
                await self._task
        finally:
            self.close()

    def close(self) -> None:
        """The call is over: stop delivering, and say once how much its client missed."""
        if self._task is not None:
            self._task.cancel()
        self._queue.clear()
        if self._dropped:
            log.warning(
                "upstream %s: a client did not read its response stream; %d of its call's progress/log "
                "notifications were dropped",
                self._upstream,
                self._dropped,
            )
            self._dropped = 0
