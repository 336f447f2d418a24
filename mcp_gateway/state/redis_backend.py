"""`RedisBackend`: the state backend for several gateway processes (workers or replicas).

Messages ride Redis pub/sub: one channel every process listens on (`<prefix>:all`) and one per
process (`<prefix>:p:<process id>`). Session records are hashes with an idle TTL. A Redis outage
degrades cross-process features (they log and fail the one message) but never blocks a call that this
process can serve alone; the subscriber reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from .backend import BackendUnavailable, Message, StateBackend

log = logging.getLogger("mcp_gateway.state")


class RedisBackend(StateBackend):
    shared = True

    def __init__(self, url: str, prefix: str = "mcpgw") -> None:
        super().__init__()
        self.url = url
        self._prefix = prefix
        self._all = f"{prefix}:all"
        self._mine = f"{prefix}:p:{self.process_id}"
        self._client: redis.Redis = redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def client(self) -> redis.Redis:
        """The connection pool, for other shared state in the same Redis (limit counters)."""
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix

    async def start(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"cannot reach Redis at {self.url}: {exc}") from exc
        self._reader = asyncio.create_task(self._read_forever(), name="state:redis-reader")
        async with asyncio.timeout(10):
            await self._subscribed.wait()
        log.info("state backend: redis %s (process %s)", self.url, self.process_id)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await super().stop()
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def _read_forever(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._all, self._mine)
                self._subscribed.set()
                delay = 0.2
                async for item in pubsub.listen():
                    data = item.get("data")
                    if not isinstance(data, bytes | str):
                        continue
                    try:
                        message = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(message, dict) and message.get("from") != self.process_id:
                        self._spawn_dispatch(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("redis subscriber lost its connection (%s); reconnecting in %.1fs", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _publish(self, channel: str, kind: str, message: Message) -> None:
        payload = orjson.dumps({**message, "k": kind, "from": self.process_id})
        try:
            await self._client.publish(channel, payload)
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"redis publish failed: {exc}") from exc

    async def broadcast(self, kind: str, message: Message) -> None:
        try:
            await self._publish(self._all, kind, message)
        except BackendUnavailable as exc:
            log.warning("could not tell other processes about %s: %s", kind, exc)

    async def send(self, process_id: str, kind: str, message: Message) -> None:
        if process_id == self.process_id:
            await super().send(process_id, kind, message)
            return
        await self._publish(f"{self._prefix}:p:{process_id}", kind, message)

    # -- session records -----------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self._prefix}:s:{key}"

    async def session_create(self, key: str, fields: dict[str, str], ttl: float) -> None:
        await self._guarded(self._pipeline_set(key, fields, [], ttl))

    async def session_load(self, key: str) -> dict[str, str] | None:
        raw: dict[Any, Any] = await self._guarded(self._client.hgetall(self._key(key)))
        if not raw:
            return None
        return {_text(k): _text(v) for k, v in raw.items()}

    async def session_update(self, key: str, set_fields: dict[str, str], drop_fields: list[str], ttl: float) -> None:
        await self._guarded(self._pipeline_set(key, set_fields, drop_fields, ttl))

    async def session_touch(self, key: str, ttl: float) -> bool:
        return bool(await self._guarded(self._client.expire(self._key(key), max(1, int(ttl)))))

    async def session_delete(self, key: str) -> None:
        await self._guarded(self._client.delete(self._key(key)))

    async def _pipeline_set(self, key: str, set_fields: dict[str, str], drop_fields: list[str], ttl: float) -> None:
        name = self._key(key)
        async with self._client.pipeline(transaction=True) as pipe:
            if set_fields:
                pipe.hset(name, mapping=set_fields)
            if drop_fields:
                pipe.hdel(name, *drop_fields)
            pipe.expire(name, max(1, int(ttl)))
            await pipe.execute()

    async def _guarded(self, operation: Any) -> Any:
        try:
            return await operation
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
