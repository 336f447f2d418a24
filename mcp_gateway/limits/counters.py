"""The counters behind limits: a GCRA rate per key, a number of held slots per key, and amounts used per
key and period. In this process (`MemoryCounters`) or in Redis for several processes
(`limits/redis_counters.py`)."""

from __future__ import annotations

import time
from typing import Protocol

from ..state import StateBackend


class Counters(Protocol):
    async def rate_acquire(self, key: str, interval_ms: float, burst: int) -> float:
        """GCRA: admit one request of a flow allowing `burst` at once and one per `interval_ms` after.
        Returns 0 when admitted, else the milliseconds until a request would be."""
        ...

    async def concurrency_acquire(self, key: str, limit: int, ttl: float) -> bool:
        """Take one of `limit` slots (a slot left by a crashed process frees itself after `ttl` s)."""
        ...

    async def concurrency_release(self, key: str) -> None: ...

    async def usage_read(self, keys: list[str]) -> list[float]:
        """The amounts counted so far under these keys (0 for keys not seen)."""
        ...

    async def usage_add(self, keys: list[tuple[str, float]], amount: float) -> None:
        """Add `amount` to each key; a key lives for its given seconds after it was first written."""
        ...


_MAX_KEYS = 100_000


class MemoryCounters:
    """One process's counters. Keys come from policy limit names and callers, so they are bounded by who
    calls; expired entries are swept once the maps grow large."""

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._slots: dict[str, int] = {}
        self._usage: dict[str, tuple[float, float]] = {}  # key -> (amount, expires at)

    async def rate_acquire(self, key: str, interval_ms: float, burst: int) -> float:
        now = time.monotonic() * 1000
        tat = max(self._tats.get(key, now), now)
        allow_at = tat + interval_ms - interval_ms * burst
        if now < allow_at:
            return allow_at - now
        self._tats[key] = tat + interval_ms
        if len(self._tats) > _MAX_KEYS:
            self._tats = {k: v for k, v in self._tats.items() if v > now}
        return 0.0

    async def concurrency_acquire(self, key: str, limit: int, ttl: float) -> bool:
        held = self._slots.get(key, 0)
        if held >= limit:
            return False
        self._slots[key] = held + 1
        return True

    async def concurrency_release(self, key: str) -> None:
        held = self._slots.get(key, 0)
        if held <= 1:
            self._slots.pop(key, None)
        else:
            self._slots[key] = held - 1

    async def usage_read(self, keys: list[str]) -> list[float]:
        now = time.monotonic()
        found = [self._usage.get(key) for key in keys]
        return [entry[0] if entry is not None and entry[1] > now else 0.0 for entry in found]

    async def usage_add(self, keys: list[tuple[str, float]], amount: float) -> None:
        now = time.monotonic()
        for key, ttl in keys:
            entry = self._usage.get(key)
            if entry is None or entry[1] <= now:
                entry = (0.0, now + ttl)
            self._usage[key] = (entry[0] + amount, entry[1])
        if len(self._usage) > _MAX_KEYS:
            self._usage = {k: v for k, v in self._usage.items() if v[1] > now}


def create_counters(backend: StateBackend) -> Counters:
    """Counters where the state backend keeps shared state: Redis counters for a Redis backend."""
    from ..state.redis_backend import RedisBackend  # imported here: redis is only needed when configured

    if isinstance(backend, RedisBackend):
        from .redis_counters import RedisCounters

        return RedisCounters(backend.client, backend.prefix)
    return MemoryCounters()
