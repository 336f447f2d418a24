"""Supervises the connection to each upstream: connect, watch, reconnect with backoff, report health.

One `UpstreamSession` per upstream is shared by every client call: no handshake per call. An upstream
that is down never blocks the others; its calls fail fast with an error naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..auth.principal import Principal
from ..config import HttpUpstream, SseUpstream, StdioUpstream, Upstream
from ..jsonrpc import McpError
from .credentials import build_credentials
from .events import UpstreamEvents
from .relay import Relay
from .session import UpstreamSession
from .transport import Transport, UpstreamGone
from .transport_http import StreamableHttpTransport
from .transport_sse import LegacySseTransport
from .transport_stdio import StdioTransport

log = logging.getLogger("mcp_gateway.upstream")


# Builds the transport of an upstream from its config: the three the config names by default; an embedding
# (or the pipeline's in-process tests) may serve some upstreams in this process instead (transport_memory.py).
Connect = Callable[[str, Upstream, "str | None"], Transport]


def build_transport(name: str, config: Upstream, base_dir: str | None = None) -> Transport:
    limit = config.max_message_bytes
    if isinstance(config, SseUpstream):
        return LegacySseTransport(name, config.url, config.headers, config.connect_timeout, limit)
    if isinstance(config, HttpUpstream):
        return StreamableHttpTransport(name, config.url, config.headers, config.connect_timeout, limit)
    if isinstance(config, StdioUpstream):
        command = _resolve_command(config.command)
        cwd = config.cwd if config.cwd is None or base_dir is None else os.path.join(base_dir, config.cwd)
        return StdioTransport(name, command, config.args, config.env, cwd or base_dir, limit)
    raise TypeError(f"unknown upstream transport {config!r}")


@dataclass(slots=True)
class Health:
    state: str = "connecting"  # connecting | ready | down
    error: str | None = None
    since: float = 0.0
    connects: int = 0
    protocol_version: str | None = None


class UpstreamHandle:
    def __init__(
        self,
        name: str,
        config: Upstream,
        events: UpstreamEvents,
        base_dir: str | None = None,
        connect: Connect = build_transport,
    ) -> None:
        self.name = name
        self.connect = connect
        self.config = config
        self.base_dir = base_dir
        self.session: UpstreamSession | None = None
        self.credentials = build_credentials(name, getattr(config, "credentials", None), getattr(config, "url", ""))
        self._callers = CallerSessions(self)
        self.health = Health(since=time.time())
        self.first_attempt = asyncio.Event()
        self._events = events
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"upstream:{self.name}")

    async def _supervise(self) -> None:
        max_delay = getattr(self.config, "restart_backoff_max", 30.0)
        delay = 0.25
        if self.credentials is not None:
            await self.credentials.start()
        while not self._stopping:
            session = UpstreamSession(
                self.name,
                self.connect(self.name, self.config, self.base_dir),
                protocol=self.config.protocol,
                timeout=self.config.timeout,
                connect_timeout=self.config.connect_timeout,
                on_notification=self._notified,
            )
            try:
                async with asyncio.timeout(self.config.connect_timeout * 2):
                    if self.credentials is not None:
                        session.transport.set_auth_headers(await self.credentials.service_headers())
                    await session.open()
            except asyncio.CancelledError:
                await _close_quietly(session)
                raise
            except (McpError, TimeoutError, OSError) as exc:
                await _close_quietly(session)
                self._mark("down", _reason(exc))
                self.first_attempt.set()
                log.warning("upstream %s: connect failed (%s); retrying in %.1fs", self.name, _reason(exc), delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, max_delay)
                continue
            self.session = session
            self.health.connects += 1
            self.health.protocol_version = session.protocol_version
            log.info(
                "upstream %s: connected (%s, protocol %s)",
                self.name,
                self.config.transport,
                session.protocol_version,
            )
            await self._events.up(self)  # listeners' failures are logged there, never kill the supervisor
            self._mark("ready", None)
            self.first_attempt.set()
            delay = 0.25
            await self._watch(session)
            self.session = None
            if self._stopping:
                break
            reason = session.transport.close_reason or "connection lost"
            self._mark("down", reason)
            log.warning("upstream %s: %s; reconnecting", self.name, reason)
            await _close_quietly(session)
            await self._events.down(self)
            await asyncio.sleep(delay)

    async def _watch(self, session: UpstreamSession) -> None:
        """Return when the connection is lost: stdio and SSE say so themselves; an idle HTTP upstream is
        probed every `health_interval` seconds, so a dead one leaves the catalog before a call finds out."""
        interval = self.config.health_interval
        if interval <= 0 or not isinstance(session.transport, StreamableHttpTransport):
            await session.transport.closed.wait()
            return
        while not session.transport.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.transport.closed.wait(), interval)
                return
            if not await session.probe(min(interval, 5.0)):
                session.transport.mark_lost("health probe failed")

    async def _notified(self, method: str, params: dict[str, Any]) -> None:
        await self._events.notified(self, method, params)

    def _mark(self, state: str, error: str | None) -> None:
        if self.health.state != state:
            self.health.since = time.time()
        self.health.state = state
        self.health.error = error

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        relay: Relay | None = None,
        headers: dict[str, str] | None = None,
        principal: Principal | None = None,
    ) -> dict[str, Any]:
        """One request on behalf of `principal` (None: the gateway's own, e.g. a catalog walk)."""
        session = self.session
        if session is None:
            raise UpstreamGone(self.name, self.health.error or "not connected yet")
        credentials = self.credentials
        if credentials is not None:
            if credentials.service_due():
                session.transport.set_auth_headers(await credentials.service_headers())
            if credentials.per_caller and principal is not None:
                caller = await credentials.caller_headers(principal)
                headers = {**headers, **caller} if headers else caller
                if not session.modern:
                    # A handshake-era session belongs to whoever opened it (SDK servers answer 404 to
                    # anyone else): each caller gets a session of its own.
                    session = await self._callers.session(principal, caller, session.protocol_version)
        tenant = principal.tenant if principal is not None else None
        return await session.request(method, params, relay=relay, headers=headers, tenant=tenant)

    async def stop(self) -> None:
        self._stopping = True
        session = self.session
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if session is not None:
            await _close_quietly(session)
        await self._callers.close_all()
        if self.credentials is not None:
            await self.credentials.stop()


class CallerSessions:
    """Handshake-era sessions opened per caller (per-caller credentials), closed after they idle."""

    IDLE_SECONDS = 600.0
    MAX_SESSIONS = 1000

    def __init__(self, handle: UpstreamHandle) -> None:
        self._handle = handle
        self._sessions: dict[tuple[str | None, str, str], tuple[UpstreamSession, float]] = {}
        self._locks: dict[tuple[str | None, str, str], asyncio.Lock] = {}

    async def session(self, principal: Principal, headers: dict[str, str], version: str) -> UpstreamSession:
        key = (principal.issuer, principal.tenant, principal.subject)
        now = time.monotonic()
        found = self._sessions.get(key)
        if found is not None and not found[0].transport.closed.is_set():
            self._sessions[key] = (found[0], now)
            return found[0]
        async with self._locks.setdefault(key, asyncio.Lock()):
            found = self._sessions.get(key)
            if found is not None and not found[0].transport.closed.is_set():
                return found[0]
            await self._reap(now)
            handle = self._handle
            config = handle.config
            session = UpstreamSession(
                handle.name,
                handle.connect(handle.name, config, handle.base_dir),
                protocol=version,
                timeout=config.timeout,
                connect_timeout=config.connect_timeout,
            )
            session.transport.set_auth_headers(headers)
            try:
                async with asyncio.timeout(config.connect_timeout * 2):
                    await session.open()
            except (McpError, TimeoutError, OSError) as exc:
                await _close_quietly(session)
                raise McpError(
                    -32000, f"upstream '{handle.name}': cannot open a session for this caller ({_reason(exc)})"
                ) from None
            self._sessions[key] = (session, now)
            return session

    async def _reap(self, now: float) -> None:
        stale = [
            k
            for k, (s, used) in self._sessions.items()
            if now - used > self.IDLE_SECONDS or s.transport.closed.is_set()
        ]
        while len(self._sessions) - len(stale) >= self.MAX_SESSIONS:
            oldest = min((k for k in self._sessions if k not in stale), key=lambda k: self._sessions[k][1])
            stale.append(oldest)
        for key in stale:
            session, _ = self._sessions.pop(key)
            self._locks.pop(key, None)
            await _close_quietly(session)

    async def close_all(self) -> None:
        for session, _ in list(self._sessions.values()):
            await _close_quietly(session)
        self._sessions.clear()


class UpstreamPool:
    def __init__(
        self,
        upstreams: dict[str, Upstream],
        events: UpstreamEvents,
        base_dir: str | None = None,
        connect: Connect = build_transport,
    ) -> None:
        self.events = events
        self.handles = {
            name: UpstreamHandle(name, config, events, base_dir, connect)
            for name, config in upstreams.items()
            if config.enabled
        }

    async def start(self, wait: float) -> None:
        """Connect to every upstream; wait up to `wait` seconds for each first attempt, never longer."""
        for handle in self.handles.values():
            handle.start()
        if self.handles:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await asyncio.gather(*(h.first_attempt.wait() for h in self.handles.values()))

    def get(self, name: str) -> UpstreamHandle | None:
        return self.handles.get(name)

    async def stop(self) -> None:
        await asyncio.gather(*(h.stop() for h in self.handles.values()), return_exceptions=True)


def _resolve_command(command: str) -> str:
    """`python` is the gateway's own interpreter; other bare names are looked up on PATH, then beside it.

    Clients such as Claude Desktop start `mcp-gateway stdio` with a minimal PATH that lacks the
    gateway's virtualenv, where servers installed alongside it (e.g. mcp-server-time) live.
    """
    if command in ("python", "python3"):
        return sys.executable
    if os.sep in command or shutil.which(command):
        return command
    beside = os.path.join(os.path.dirname(sys.executable), command)
    return beside if os.access(beside, os.X_OK) else command


async def _close_quietly(session: UpstreamSession) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(session.aclose(), 10)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, McpError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
