"""Admission under the policy's rate and concurrency limits: a call either gets an `Admission` (the
concurrency slots it holds, given back as one unit when its work ends) or a `RATE_LIMITED` error naming
the limit and when to retry.

When the counters cannot be reached (Redis down), calls are admitted uncounted and the outage is logged:
a limit protects upstreams from bursts, and refusing every call while the store is away would turn a
degraded limit into an outage (Envoy's rate-limit filter fails open by default for the same reason).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from ..auth.principal import Principal
from ..jsonrpc import RATE_LIMITED, McpError
from ..policy import CurrentPolicy
from ..state import BackendUnavailable
from .counters import Counters

log = logging.getLogger("mcp_gateway.limits")

_WARN_EVERY = 30.0  # seconds between two warnings that the counters are unreachable


class Admission:
    """The concurrency slots one admitted call holds."""

    __slots__ = ("_limiter", "_slots")

    def __init__(self, limiter: Limiter | None, slots: list[str]) -> None:
        self._limiter = limiter
        self._slots = slots

    async def release(self) -> None:
        slots, self._slots = self._slots, []
        if slots and self._limiter is not None:
            for key in slots:
                await self._limiter.release_slot(key)

    def release_when_done(self, work: asyncio.Future[None]) -> None:
        """The call's work outlives its answer (parked on input_required): keep the slots until it ends."""
        if not self._slots:
            return
        work.add_done_callback(self._release_later)

    def _release_later(self, _work: asyncio.Future[None]) -> None:
        task = asyncio.get_running_loop().create_task(self.release())
        _releasing.add(task)
        task.add_done_callback(_releasing.discard)

    @property
    def holds(self) -> bool:
        return bool(self._slots)


NOT_LIMITED = Admission(None, [])
_releasing: set[asyncio.Task[None]] = set()  # releases in progress (a task needs a strong reference)


class Limiter:
    def __init__(self, policy: CurrentPolicy, counters: Counters, slot_ttl: Callable[[str | None], float]) -> None:
        self._policy = policy
        self.counters = counters
        self._slot_ttl = slot_ttl  # seconds a slot may live for a call to this upstream (a crashed holder)
        self._warned_at = 0.0

    async def admit(self, principal: Principal, kind: str, target: str, upstream: str | None) -> Admission:
        """Take what the limits that apply allow, or raise RATE_LIMITED (taking nothing)."""
        engine = self._policy.engine
        if engine is None:
            return NOT_LIMITED
        limits = engine.limits_for(principal, kind, target, upstream)
        if not limits:
            return NOT_LIMITED
        slots: list[str] = []
        try:
            for limit in limits:
                key = limit.key(principal, target)
                if limit.concurrency is not None:
                    if not await self.counters.concurrency_acquire(key, limit.concurrency, self._slot_ttl(upstream)):
                        raise McpError(
                            RATE_LIMITED,
                            f"limit '{limit.name}': {limit.concurrency} call(s) already in flight; retry when one ends",
                            {"limit": limit.name, "retryAfterSeconds": 1},
                        )
                    slots.append(key)
                if limit.interval_ms is not None:
                    wait_ms = await self.counters.rate_acquire(key, limit.interval_ms, limit.burst)
                    if wait_ms > 0:
                        seconds = max(1, math.ceil(wait_ms / 1000))
                        raise McpError(
                            RATE_LIMITED,
                            f"limit '{limit.name}' reached; retry after {seconds}s",
                            {"limit": limit.name, "retryAfterSeconds": seconds},
                        )
        except BackendUnavailable as exc:
            self._warn(exc)
            return Admission(self, slots)
        except BaseException:
            for key in slots:
                await self.release_slot(key)
            raise
        return Admission(self, slots)

    async def release_slot(self, key: str) -> None:
        try:
            await self.counters.concurrency_release(key)
        except BackendUnavailable as exc:
            log.warning("could not release a concurrency slot (it expires by itself): %s", exc)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("limits not counted (the counters are unreachable; calls are admitted): %s", exc)
