"""The connection slots of one upstream's pool, shared fairly between tenants.

With one FIFO semaphore, one tenant's burst of slow calls held every slot and queued every other tenant's
calls behind its own backlog. Two rules instead:

- While the pool is full, a freed slot goes to the waiting tenant that holds the fewest slots (first come,
  first served within a tenant): turns go round the tenants, not round the calls.
- A tenant holding less than its fair share (`limit` / tenants holding or waiting) may go past `limit`,
  into a reserve of `limit // 4` slots, so it is served at once even while slow calls of another tenant
  hold every regular slot. A tenant alone still has the whole `limit`, and the total never passes
  `limit` + reserve (the upstream's connection count stays bounded).

Idle tenants are kept (so a steady caller does not allocate per call) up to `_IDLE_KEPT`, then swept: the
state is bounded by the callers in flight plus that. The uncontended path is a dict lookup and a few
additions, about as cheap as `asyncio.Semaphore`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable

_IDLE_KEPT = 64


class _Tenant:
    __slots__ = ("held", "waiters")

    def __init__(self) -> None:
        self.held = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()


class FairSlots:
    __slots__ = ("_active", "_hard", "_limit", "_tenants", "_total", "_waiting")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._hard = limit + max(1, limit // 4)
        self._tenants: dict[Hashable, _Tenant] = {}
        self._total = 0  # slots held
        self._waiting = 0  # callers waiting, all tenants
        self._active = 0  # tenants holding or waiting

    def _admits(self, tenant: _Tenant) -> bool:
        if self._total < self._limit:
            return True
        # held < limit / active tenants, without division
        return self._total < self._hard and tenant.held * self._active < self._limit

    async def acquire(self, key: Hashable) -> None:
        tenant = self._tenants.get(key)
        if tenant is None:
            if len(self._tenants) >= _IDLE_KEPT:
                self._sweep()
            tenant = self._tenants[key] = _Tenant()
        idle = not tenant.held and not tenant.waiters
        if idle:
            self._active += 1
        if not tenant.waiters and self._admits(tenant):
            tenant.held += 1
            self._total += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tenant.waiters.append(future)
        self._waiting += 1
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(key)  # granted as the caller gave up: pass it on
            elif future in tenant.waiters:
                tenant.waiters.remove(future)
                self._waiting -= 1
                self._settle(tenant)
                if self._waiting:
                    self._grant()  # one tenant fewer: the others' shares grew
            raise

    def release(self, key: Hashable) -> None:
        tenant = self._tenants[key]
        tenant.held -= 1
        self._total -= 1
        self._settle(tenant)
        if self._waiting:
            self._grant()

    def _settle(self, tenant: _Tenant) -> None:
        if not tenant.held and not tenant.waiters:
            self._active -= 1

    def _sweep(self) -> None:
        for key in [k for k, t in self._tenants.items() if not t.held and not t.waiters]:
            del self._tenants[key]

    def _grant(self) -> None:
        while self._waiting:
            tenant = min((t for t in self._tenants.values() if t.waiters), key=lambda t: t.held)
            if not self._admits(tenant):
                return
            future = tenant.waiters.popleft()
            self._waiting -= 1
            if future.done():  # cancelled, its caller not yet resumed: not a grant
                self._settle(tenant)
                continue
            tenant.held += 1
            self._total += 1
            future.set_result(None)
