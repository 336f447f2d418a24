"""Handshake-era sessions that any process can serve.

The `Mcp-Session-Id` is a sealed token holding the client's `initialize` data, so any process holding
the keyring can serve any call of the session without a lookup. What changes during a session (its log
level, its resource subscriptions, whether it still exists) is a record in the state backend; each
process keeps a local copy of the sessions it has seen, kept current by session events from the other
processes. What cannot leave a process (open GET streams, calls in flight, requests awaiting the
client's answer) stays here, and messages for it are routed to the process holding it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..calls import ClientContext
from ..conversation.dialogue import Dialogue
from ..conversation.keepalive import end
from ..conversation.message import Response
from ..state import BackendUnavailable, Sealer, StateBackend

log = logging.getLogger("mcp_gateway.front")

SESSION_PURPOSE = b"mcp-session"
_LEVEL = "lvl"
_SUBSCRIPTION = "sub:"  # one field per subscribed URI


def record_key(sid: str) -> str:
    """The backend key of a session: a digest, so the backend never holds usable session ids."""
    return hashlib.sha256(sid.encode()).hexdigest()[:32]


class Watches(Protocol):
    """Upstream resource watches (the core's `ResourceWatches`)."""

    async def watch(self, uri: str) -> bool: ...

    async def unwatch(self, uri: str) -> None: ...


class TooManySessions(Exception):
    """Every session the caller may hold is busy (streams open or calls in flight)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"this caller already holds {limit} busy sessions (server.max_sessions_per_caller)")


@dataclass(slots=True)
class FrontSession:
    """One handshake-era session as this process holds it (a `conversation.handshake.Session`)."""

    sid: str
    key: str
    client: ClientContext
    last_seen: float
    last_touched: float
    registry: SessionRegistry
    binding: bytes = b""  # the caller it was opened by (tenant and subject)
    dialogue: Dialogue = field(default_factory=Dialogue)
    streams: list[asyncio.Queue[bytes]] = field(default_factory=list)
    subscriptions: set[str] = field(default_factory=set)
    watched: set[str] = field(default_factory=set)  # subscriptions this process watches upstream

    async def set_log_level(self, level: str) -> None:
        await self.registry.set_log_level(self, level)

    async def subscribe(self, uri: str) -> None:
        await self.registry.subscribe(self, uri)

    async def unsubscribe(self, uri: str) -> None:
        await self.registry.unsubscribe(self, uri)

    def close(self) -> None:
        self.dialogue.close()
        for queue in self.streams:
            end(queue)  # wakes the GET stream, which then ends
        self.streams.clear()


_MAX_TOMBSTONES = 100_000


class SessionRegistry:
    """This process's view of the handshake-era sessions."""

    def __init__(
        self,
        sealer: Sealer,
        backend: StateBackend,
        idle_timeout: float,
        watches: Watches | None = None,
        max_per_caller: int = 256,
    ) -> None:
        self._sealer = sealer
        self._max_per_caller = max_per_caller
        self._by_caller: dict[bytes, dict[str, FrontSession]] = {}  # binding -> its sessions, oldest first
        self._backend = backend
        self._watches = watches
        self._background: set[asyncio.Task[None]] = set()
        self._idle_timeout = idle_timeout
        self._sessions: dict[str, FrontSession] = {}
        self._by_key: dict[str, FrontSession] = {}
        # Ended here: never adopted again by this process even if a stale record lingers elsewhere. Keyed on
        # the id as sent: the sealer opens a token only in the one spelling it seals it with.
        self._ended: dict[str, None] = {}
        backend.on("session", self._on_session_event)
        backend.on("answer", self._on_routed_answer)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[FrontSession]:
        return iter(list(self._sessions.values()))

    # -- lifecycle -----------------------------------------------------------------------------------

    async def create(self, client: ClientContext, bound_to: bytes = b"") -> FrontSession:
        """A new session for the caller `bound_to` names. A caller holds at most `max_per_caller` sessions
        in this process: opening one more ends its least recently used idle one (clients rarely DELETE), and
        when every one is busy the new one is refused (`TooManySessions`)."""
        mine = self._by_caller.get(bound_to)
        if mine is not None and len(mine) >= self._max_per_caller:
            await self._make_room(mine)
        payload = {
            "v": client.protocol_version,
            "c": client.capabilities,
            "i": client.client_info,
            "t": int(time.time()),
        }
        sid = self._sealer.seal(payload, SESSION_PURPOSE, bound_to)
        client.session_id = sid
        now = time.monotonic()
        session = self._new(sid, record_key(sid), client, now, bound_to)
        try:
            await self._backend.session_create(session.key, {"t": str(payload["t"])}, self._idle_timeout)
        except BackendUnavailable as exc:
            # Served by this process all the same; other processes will not know it until the record exists.
            log.warning("session not recorded in the shared state: %s", exc)
        self._remember(session)
        return session

    async def get(self, sid: str, bound_to: bytes = b"") -> FrontSession | None:
        """The live session for `sid`, adopting one created by another process; None if unknown/ended."""
        session = self._sessions.get(sid)
        if session is None:
            return await self._adopt(sid, bound_to)
        if session.binding != bound_to:
            return None  # another caller's session: as good as unknown
        now = time.monotonic()
        if now - session.last_touched > self._idle_timeout / 4:
            # Liveness is shared: extend the record now and then, not on every call.
            session.last_touched = now
            try:
                alive = await self._backend.session_touch(session.key, self._idle_timeout)
            except BackendUnavailable as exc:
                log.warning("session liveness not recorded: %s", exc)
                alive = True
            if not alive:
                self._tombstone(session.sid)
                self._forget(session)
                return None
        session.last_seen = now
        return session

    async def _adopt(self, sid: str, bound_to: bytes) -> FrontSession | None:
        if sid in self._ended:
            return None
        payload = self._sealer.open(sid, SESSION_PURPOSE, bound_to)
        if payload is None or not isinstance(payload.get("v"), str):
            return None
        key = record_key(sid)
        try:
            fields = await self._backend.session_load(key)
        except BackendUnavailable as exc:
            log.warning("cannot check session state: %s", exc)
            return None
        if fields is None:
            if self._backend.shared:
                return None  # ended (DELETE) or expired in every process
            # One process and a stable secret: a session outlives a restart of this process.
            fields = {}
            await self._backend.session_create(key, {"t": str(payload.get("t", 0))}, self._idle_timeout)
        capabilities = payload.get("c")
        client_info = payload.get("i")
        level = fields.get(_LEVEL)
        client = ClientContext(
            protocol_version=payload["v"],
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            client_info=client_info if isinstance(client_info, dict) else None,
            session_id=sid,
            log_level=level or None,
        )
        now = time.monotonic()
        session = self._new(sid, key, client, now, bound_to)
        session.subscriptions.update(name[len(_SUBSCRIPTION) :] for name in fields if name.startswith(_SUBSCRIPTION))
        self._remember(session)
        return session

    async def end(self, session: FrontSession) -> None:
        """DELETE: the session ends in every process."""
        self._tombstone(session.sid)
        self._forget(session)
        try:
            await self._backend.session_delete(session.key)
        except BackendUnavailable as exc:
            log.warning("session end not recorded: %s", exc)
        await self._backend.broadcast("session", {"key": session.key, "op": "end"})

    def _new(self, sid: str, key: str, client: ClientContext, now: float, bound_to: bytes) -> FrontSession:
        # Our requests to the client carry this process's id, so any process can route the answer back.
        dialogue = Dialogue(f"gw-{self._backend.process_id}-")
        return FrontSession(sid, key, client, now, now, self, bound_to, dialogue)

    def expire_idle(self) -> int:
        """Drop local copies of sessions idle here; the shared record expires by its own TTL."""
        cutoff = time.monotonic() - self._idle_timeout
        stale = [
            s for s in self._sessions.values() if s.last_seen < cutoff and not s.streams and not s.dialogue.inflight
        ]
        for session in stale:
            if not self._backend.shared:
                self._tombstone(session.sid)  # this process is the only judge of its liveness
            self._forget(session)
        return len(stale)

    def close_all(self) -> None:
        for session in list(self._sessions.values()):
            self._forget(session)

    async def _make_room(self, mine: dict[str, FrontSession]) -> None:
        idle = [s for s in mine.values() if not s.streams and not s.dialogue.inflight]
        if not idle:
            raise TooManySessions(self._max_per_caller)
        oldest = min(idle, key=lambda s: s.last_seen)
        log.info("a caller opened more than %d sessions; its least recently used one ends", self._max_per_caller)
        await self.end(oldest)

    def _remember(self, session: FrontSession) -> None:
        self._sessions[session.sid] = session
        self._by_key[session.key] = session
        self._by_caller.setdefault(session.binding, {})[session.sid] = session

    def _forget(self, session: FrontSession) -> None:
        self._sessions.pop(session.sid, None)
        self._by_key.pop(session.key, None)
        mine = self._by_caller.get(session.binding)
        if mine is not None:
            mine.pop(session.sid, None)
            if not mine:
                del self._by_caller[session.binding]
        session.close()
        if session.watched and self._watches is not None:
            task = asyncio.get_running_loop().create_task(self._unwatch_all(list(session.watched)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            session.watched.clear()

    async def _unwatch_all(self, uris: list[str]) -> None:
        assert self._watches is not None
        for uri in uris:
            await self._watches.unwatch(uri)

    def _tombstone(self, sid: str) -> None:
        self._ended[sid] = None
        if len(self._ended) > _MAX_TOMBSTONES:
            del self._ended[next(iter(self._ended))]

    # -- what a session's calls change ---------------------------------------------------------------

    async def set_log_level(self, session: FrontSession, level: str) -> None:
        session.client.log_level = level
        await self._record(session, {_LEVEL: level}, [], {"op": "level", "value": level})

    async def subscribe(self, session: FrontSession, uri: str) -> None:
        session.subscriptions.add(uri)
        if self._watches is not None and uri not in session.watched and await self._watches.watch(uri):
            session.watched.add(uri)
        await self._record(session, {_SUBSCRIPTION + uri: "1"}, [], {"op": "sub", "value": uri})

    async def unsubscribe(self, session: FrontSession, uri: str) -> None:
        session.subscriptions.discard(uri)
        await self._unwatch(session, uri)
        await self._record(session, {}, [_SUBSCRIPTION + uri], {"op": "unsub", "value": uri})

    async def _unwatch(self, session: FrontSession, uri: str) -> None:
        if self._watches is not None and uri in session.watched:
            session.watched.discard(uri)
            await self._watches.unwatch(uri)

    async def _record(self, session: FrontSession, set_fields: dict[str, str], drop: list[str], event: dict) -> None:
        try:
            await self._backend.session_update(session.key, set_fields, drop, self._idle_timeout)
        except BackendUnavailable as exc:
            log.warning("session change not shared with other processes: %s", exc)
        await self._backend.broadcast("session", {"key": session.key, **event})

    async def _on_session_event(self, message: dict[str, Any]) -> None:
        session = self._by_key.get(message.get("key", ""))
        if session is None:
            return None
        op, value = message.get("op"), message.get("value")
        if op == "end":
            self._tombstone(session.sid)
            self._forget(session)
        elif op == "level" and isinstance(value, str):
            session.client.log_level = value
        elif op == "sub" and isinstance(value, str):
            session.subscriptions.add(value)
        elif op == "unsub" and isinstance(value, str):
            session.subscriptions.discard(value)
            await self._unwatch(session, value)
        return None

    # -- the client's answers to our requests -------------------------------------------------------

    async def route_answer(self, session: FrontSession, response: Response) -> None:
        """The client answered a request: complete it here or in the process that asked."""
        if session.dialogue.answered(response):
            return
        request_id = response.id
        if not isinstance(request_id, str) or not request_id.startswith("gw-"):
            return
        owner = request_id[3:].split("-", 1)[0]
        if owner == self._backend.process_id:
            return  # ours, but no longer awaited (withdrawn or timed out)
        try:
            await self._backend.send(owner, "answer", {"key": session.key, "message": response.message})
        except BackendUnavailable as exc:
            log.warning("could not route a client's answer to process %s: %s", owner, exc)

    async def _on_routed_answer(self, message: dict[str, Any]) -> None:
        session = self._by_key.get(message.get("key", ""))
        answer = message.get("message")
        if session is not None and isinstance(answer, dict):
            session.dialogue.answered(Response(answer.get("id"), answer))
        return None
