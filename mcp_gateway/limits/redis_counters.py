"""Limit counters in Redis, exact across every process and replica: each update is one atomic script or
command on Redis's own clock, so processes with skewed clocks agree."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from ..state import BackendUnavailable

# GCRA in one atomic step.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - interval * burst
if now < allow_at then return tostring(allow_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return '0'
"""
# Take a slot unless all are held; the key expires if its holders die without releasing.
_TAKE_SLOT = """
local held = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if held > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
"""


class RedisCounters:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._gcra = client.register_script(_GCRA)
        self._take_slot = client.register_script(_TAKE_SLOT)

    async def rate_acquire(self, key: str, interval_ms: float, burst: int) -> float:
        wait = await _guarded(self._gcra(keys=[f"{self._prefix}:rate:{key}"], args=[interval_ms, burst]))
        return float(wait.decode() if isinstance(wait, bytes) else wait)

    async def concurrency_acquire(self, key: str, limit: int, ttl: float) -> bool:
        taken = await _guarded(self._take_slot(keys=[f"{self._prefix}:slots:{key}"], args=[limit, max(1, int(ttl))]))
        return bool(taken)

    async def concurrency_release(self, key: str) -> None:
        await _guarded(self._client.decr(f"{self._prefix}:slots:{key}"))

    async def usage_read(self, keys: list[str]) -> list[float]:
        values = await _guarded(self._client.mget([f"{self._prefix}:use:{key}" for key in keys]))
        return [float(value) if value is not None else 0.0 for value in values]

    async def usage_add(self, keys: list[tuple[str, float]], amount: float) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, ttl in keys:
            name = f"{self._prefix}:use:{key}"
            pipe.incrbyfloat(name, amount)
            pipe.expire(name, max(1, int(ttl)), nx=True)  # the period's key dies after the period
        await _guarded(pipe.execute())


async def _guarded(operation: Any) -> Any:
    try:
        return await operation
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"redis: {exc}") from exc
