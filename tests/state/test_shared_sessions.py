"""Sessions and messages shared by processes through a real Redis (two backends = two processes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from mcp_gateway.calls import ClientContext
from mcp_gateway.conversation.message import Response
from mcp_gateway.front.sessions import SessionRegistry
from mcp_gateway.state import MemoryBackend, Sealer
from mcp_gateway.state.redis_backend import RedisBackend

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def _two_processes(redis_state) -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:
    """Two backends on one Redis, as two gateway processes would hold them."""
    first = RedisBackend(redis_state["redis_url"], redis_state["key_prefix"])
    second = RedisBackend(redis_state["redis_url"], redis_state["key_prefix"])
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()


async def _eventually(predicate, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_session_created_by_one_process_is_served_by_another_until_it_ends(redis_state):
    async with _two_processes(redis_state) as (first, second):
        sealer = Sealer.from_secrets([(1, "shared secret")])
        one = SessionRegistry(sealer, first, idle_timeout=60)
        two = SessionRegistry(sealer, second, idle_timeout=60)
        session = await one.create(ClientContext("2025-11-25", {"sampling": {}}, {"name": "c", "version": "1"}))
        adopted = await two.get(session.sid)
        assert adopted is not None
        assert adopted.client.capabilities == {"sampling": {}}
        assert adopted.client.client_info == {"name": "c", "version": "1"}

        # What a call changes in one process is seen by the other.
        await one.set_log_level(session, "warning")
        await one.subscribe(session, "file:///a")
        await _eventually(lambda: adopted.client.log_level == "warning" and "file:///a" in adopted.subscriptions)

        # A third process adopting later loads the same state from the record.
        third = SessionRegistry(sealer, second, idle_timeout=60)
        late = await third.get(session.sid)
        assert late is not None and late.client.log_level == "warning" and late.subscriptions == {"file:///a"}

        # DELETE on one process ends it everywhere.
        await two.end(adopted)
        await _eventually(lambda: len(one) == 0)
        assert await one.get(session.sid) is None
        assert await SessionRegistry(sealer, first, idle_timeout=60).get(session.sid) is None
        # A key that did not seal it opens nothing.
        other = SessionRegistry(Sealer.from_secrets([(1, "other")]), first, idle_timeout=60)
        fresh = await one.create(ClientContext("2025-11-25"))
        assert await other.get(fresh.sid) is None


async def test_a_clients_answer_reaches_the_process_that_asked(redis_state):
    async with _two_processes(redis_state) as (first, second):
        sealer = Sealer.from_secrets([(1, "shared secret")])
        one = SessionRegistry(sealer, first, idle_timeout=60)
        two = SessionRegistry(sealer, second, idle_timeout=60)
        session = await one.create(ClientContext("2025-11-25", {"sampling": {}}))
        request_id, waiting = session.dialogue.expect_answer()
        elsewhere = await two.get(session.sid)
        assert elsewhere is not None
        answer = {"jsonrpc": "2.0", "id": request_id, "result": {"ok": True}}
        await two.route_answer(elsewhere, Response(request_id, answer))
        assert await asyncio.wait_for(waiting, 3) == {"ok": True}


async def test_ask_gets_the_reply_of_the_other_process_and_times_out_cleanly(redis_state):
    async with _two_processes(redis_state) as (first, second):

        async def double(message):
            return {"value": message["value"] * 2}

        second.on("double", double)
        assert await first.ask(second.process_id, "double", {"value": 21}, timeout=3) == {"value": 42}
        from mcp_gateway.state import BackendUnavailable

        with pytest.raises(BackendUnavailable):
            await first.ask("nobody-here", "double", {"value": 1}, timeout=0.3)


async def test_memory_backend_sessions_survive_a_restart_with_a_stable_secret_but_not_a_delete():
    sealer = Sealer.from_secrets([(1, "stable")])
    before = SessionRegistry(sealer, MemoryBackend(), idle_timeout=60)
    session = await before.create(ClientContext("2025-11-25"))
    restarted = SessionRegistry(sealer, MemoryBackend(), idle_timeout=60)
    revived = await restarted.get(session.sid)
    assert revived is not None
    await restarted.end(revived)
    assert await restarted.get(session.sid) is None
