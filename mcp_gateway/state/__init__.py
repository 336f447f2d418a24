"""State shared beyond one request: sealed tokens the client carries, and the backend processes share."""

from __future__ import annotations

from .backend import BackendUnavailable, MemoryBackend, StateBackend
from .sealing import Sealer

__all__ = ["BackendUnavailable", "MemoryBackend", "Sealer", "StateBackend", "create_backend"]


def create_backend(kind: str, redis_url: str | None, prefix: str) -> StateBackend:
    if kind == "redis":
        from .redis_backend import RedisBackend  # imported only when configured

        return RedisBackend(redis_url or "redis://127.0.0.1:6379/0", prefix)
    return MemoryBackend()
