"""FairSlots: a pool's slots shared between tenants (turns go round the tenants; a tenant under its share
gets a reserve slot at once), with cancellation at every point."""

from __future__ import annotations

import asyncio

import pytest

from mcp_gateway.upstream.fair_slots import FairSlots


async def _take(slots: FairSlots, key: str, count: int) -> None:
    for _ in range(count):
        await slots.acquire(key)


async def _waiting(slots: FairSlots, key: str) -> asyncio.Task[None]:
    task = asyncio.create_task(slots.acquire(key))
    await asyncio.sleep(0)
    assert not task.done()
    return task


def test_a_tenant_alone_has_the_whole_limit_and_then_waits() -> None:
    async def main() -> None:
        slots = FairSlots(8)
        await _take(slots, "a", 8)
        ninth = await _waiting(slots, "a")  # no reserve for the only tenant
        slots.release("a")
        await asyncio.wait_for(ninth, 1)

    asyncio.run(main())


def test_another_tenant_is_served_at_once_from_the_reserve_while_one_holds_every_slot() -> None:
    async def main() -> None:
        slots = FairSlots(8)  # reserve: 2
        await _take(slots, "a", 8)
        a_waiting = await _waiting(slots, "a")
        await asyncio.wait_for(_take(slots, "b", 2), 1)  # the reserve, past a's backlog
        b_third = await _waiting(slots, "b")  # the reserve is spent: total 10 is the ceiling
        # A freed slot goes to the tenant holding fewer (b: 2), not to the older waiter (a: 8).
        slots.release("a")
        await asyncio.wait_for(b_third, 1)
        assert not a_waiting.done()
        # Now a holds 7, b 3: a's waiter is served once the total is under the limit (a is over its share).
        slots.release("a")
        slots.release("a")
        await asyncio.sleep(0)
        assert not a_waiting.done()  # a 5 + b 3: still the limit
        slots.release("a")
        await asyncio.wait_for(a_waiting, 1)

    asyncio.run(main())


def test_a_tenant_at_its_fair_share_gets_no_reserve() -> None:
    async def main() -> None:
        slots = FairSlots(8)
        await _take(slots, "a", 4)
        await _take(slots, "b", 4)
        c = await _waiting(slots, "b")  # b holds 4 = 8 / 2 tenants: not under its share
        await asyncio.wait_for(_take(slots, "c", 1), 1)  # c holds 0 < 8 / 3
        c.cancel()
        with pytest.raises(asyncio.CancelledError):
            await c

    asyncio.run(main())


def test_cancelled_waiters_give_back_what_they_were_granted_and_leave_no_state() -> None:
    async def main() -> None:
        slots = FairSlots(2)
        await _take(slots, "a", 2)
        first = await _waiting(slots, "a")
        second = await _waiting(slots, "a")
        slots.release("a")  # granted to `first`...
        first.cancel()  # ... which gives up before it runs: the slot passes on to `second`
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)
        for _ in range(2):
            slots.release("a")
        assert slots._active == 0 and slots._total == 0 and slots._waiting == 0

    asyncio.run(main())
