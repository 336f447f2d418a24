"""`StateBackend`: what gateway processes share, so no request needs to reach a particular process.

Two kinds of sharing:
- **messages** between processes: `broadcast` reaches every other process (list changes, session
  events), `send` one process by id (a client's answer to a request that process is waiting on), and
  `ask` sends and waits for the reply (resuming a parked call that lives in another process);
- **session records**: small per-session field maps with an idle TTL (log level, resource
  subscriptions, liveness), so every process sees one session the same way.

(Limit counters live with the limits: `mcp_gateway/limits/counters.py`.)

`MemoryBackend` serves a single process; `RedisBackend` (state/redis_backend.py) serves many.
Handlers are registered per message kind; a handler's return value is the reply to an `ask`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("mcp_gateway.state")

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[Message | None]]


class BackendUnavailable(Exception):
    """The shared state could not be reached (a message to another process was not delivered)."""


class StateBackend:
    """The interface, and the in-process message dispatch every implementation shares."""

    shared = False  # True when other processes may hold part of the state

    def __init__(self) -> None:
        self.process_id = uuid.uuid4().hex[:12]
        self._handlers: dict[str, Handler] = {}
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._correlation = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(BackendUnavailable("state backend stopped"))

    # -- messages ------------------------------------------------------------------------------------

    async def broadcast(self, kind: str, message: Message) -> None:
        """Deliver to every other process (never to this one: the caller has acted locally)."""
        return None

    async def send(self, process_id: str, kind: str, message: Message) -> None:
        if process_id != self.process_id:
            raise BackendUnavailable(f"process {process_id} is not reachable without a shared state backend")
        self._spawn_dispatch({**message, "k": kind, "from": self.process_id})

    async def ask(self, process_id: str, kind: str, message: Message, timeout: float) -> Message:
        """Send to one process and wait for its handler's reply."""
        correlation = f"{self.process_id}:{next(self._correlation)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[correlation] = future
        try:
            await self.send(process_id, kind, {**message, "corr": correlation})
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise BackendUnavailable(f"process {process_id} did not answer {kind} in {timeout:g}s") from None
        finally:
            self._replies.pop(correlation, None)

    def _spawn_dispatch(self, message: Message) -> None:
        # Handlers may wait (a resumed call runs until its next outcome): never block the reader.
        task = asyncio.get_running_loop().create_task(self._dispatch(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, message: Message) -> None:
        kind = message.get("k")
        if kind == "reply":
            future = self._replies.get(message.get("corr", ""))
            if future is not None and not future.done():
                future.set_result(message.get("reply") or {})
            return
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return
        try:
            reply = await handler(message)
        except Exception:
            log.exception("state message handler for %s failed", kind)
            reply = {"error": "handler failed"}
        correlation = message.get("corr")
        sender = message.get("from")
        if correlation and isinstance(sender, str):
            try:
                await self.send(sender, "reply", {"corr": correlation, "reply": reply or {}})
            except BackendUnavailable as exc:
                log.warning("could not reply to process %s: %s", sender, exc)

    # -- session records -----------------------------------------------------------------------------

    async def session_create(self, key: str, fields: dict[str, str], ttl: float) -> None:
        raise NotImplementedError

    async def session_load(self, key: str) -> dict[str, str] | None:
        """The session's fields, or None when it ended or expired everywhere."""
        raise NotImplementedError

    async def session_update(self, key: str, set_fields: dict[str, str], drop_fields: list[str], ttl: float) -> None:
        raise NotImplementedError

    async def session_touch(self, key: str, ttl: float) -> bool:
        """Extend the session's life; False when it no longer exists."""
        raise NotImplementedError

    async def session_delete(self, key: str) -> None:
        raise NotImplementedError


class MemoryBackend(StateBackend):
    """One process: messages stay local, session records live in a dict with expiry times."""

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[str, tuple[dict[str, str], float]] = {}

    def _live(self, key: str) -> dict[str, str] | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record[1] < time.monotonic():
            del self._records[key]
            return None
        return record[0]

    async def session_create(self, key: str, fields: dict[str, str], ttl: float) -> None:
        if len(self._records) > 10_000:
            self._sweep()
        self._records[key] = (dict(fields), time.monotonic() + ttl)

    async def session_load(self, key: str) -> dict[str, str] | None:
        fields = self._live(key)
        return dict(fields) if fields is not None else None

    async def session_update(self, key: str, set_fields: dict[str, str], drop_fields: list[str], ttl: float) -> None:
        fields = self._live(key)
        if fields is None:
            return
        fields.update(set_fields)
        for name in drop_fields:
            fields.pop(name, None)
        self._records[key] = (fields, time.monotonic() + ttl)

    async def session_touch(self, key: str, ttl: float) -> bool:
        fields = self._live(key)
        if fields is None:
            return False
        self._records[key] = (fields, time.monotonic() + ttl)
        return True

    async def session_delete(self, key: str) -> None:
        self._records.pop(key, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, expires) in self._records.items() if expires < now]:
            del self._records[key]
