"""Handshake-era sessions: sealed session ids plus the per-process state of live sessions.

The `Mcp-Session-Id` is an AES-GCM sealed token holding the client's `initialize` data, so any process
that holds the key can serve the session's calls. The registry here keeps the mutable, per-process
part: last use (idle expiry), open GET streams, answers awaited from the client, calls in flight.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..core.call import ClientContext
from ..jsonrpc import McpError


class SessionSealer:
    """Seals session data into an opaque URL-safe token and opens it again (AEAD, key id in front)."""

    def __init__(self, secret: str | bytes | None = None, key_id: int = 1) -> None:
        if secret is None:
            key = os.urandom(32)
        else:
            key = hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()
        self._key_id = key_id
        self._keys = {key_id: AESGCM(key)}

    def seal(self, payload: dict[str, Any], bound_to: bytes = b"") -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._key_id].encrypt(nonce, orjson.dumps(payload), bound_to)
        return base64.urlsafe_b64encode(bytes([self._key_id]) + nonce + sealed).decode().rstrip("=")

    def open(self, token: str, bound_to: bytes = b"") -> dict[str, Any] | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            aead = self._keys.get(raw[0])
            if aead is None or len(raw) < 30:
                return None
            payload = orjson.loads(aead.decrypt(raw[1:13], raw[13:], bound_to))
        except (ValueError, InvalidTag, IndexError, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None


@dataclass(slots=True)
class FrontSession:
    sid: str
    client: ClientContext
    last_seen: float
    streams: list[asyncio.Queue[bytes]] = field(default_factory=list)
    subscriptions: set[str] = field(default_factory=set)
    awaiting: dict[Any, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    inflight: dict[Any, asyncio.Task[Any]] = field(default_factory=dict)
    cancelled: set[Any] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def expect_answer(self) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        request_id = f"gw-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.awaiting[request_id] = future
        return request_id, future

    def answer(self, message: dict[str, Any]) -> bool:
        future = self.awaiting.pop(message.get("id"), None)
        if future is None or future.done():
            return False
        if "error" in message:
            future.set_exception(McpError.from_error(message["error"]))
        else:
            result = message.get("result")
            future.set_result(result if isinstance(result, dict) else {})
        return True

    def close(self) -> None:
        for future in self.awaiting.values():
            if not future.done():
                future.set_exception(McpError(-32000, "session closed"))
        self.awaiting.clear()
        for queue in self.streams:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(b"")  # wakes the GET stream, which then ends
        self.streams.clear()


_MAX_TOMBSTONES = 100_000


class SessionRegistry:
    """Live sessions of this process; a valid sealed id from another process is adopted on first use."""

    def __init__(self, sealer: SessionSealer, idle_timeout: float) -> None:
        self._sealer = sealer
        self._idle_timeout = idle_timeout
        self._sessions: dict[str, FrontSession] = {}
        # Ended or expired here: never adopted again (sessions shared across processes through a state
        # backend come with the scale-out work; until then liveness is per process).
        self._ended: dict[str, None] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._sessions.values()))

    def create(self, client: ClientContext) -> FrontSession:
        payload = {
            "v": client.protocol_version,
            "c": client.capabilities,
            "i": client.client_info,
            "t": int(time.time()),
        }
        sid = self._sealer.seal(payload)
        client.session_id = sid
        session = FrontSession(sid, client, time.monotonic())
        self._sessions[sid] = session
        return session

    def get(self, sid: str) -> FrontSession | None:
        session = self._sessions.get(sid)
        if session is None:
            return self._adopt(sid)
        now = time.monotonic()
        if now - session.last_seen > self._idle_timeout and not session.streams and not session.inflight:
            self.end(sid)
            return None
        session.last_seen = now
        return session

    def _adopt(self, sid: str) -> FrontSession | None:
        if sid in self._ended:
            return None
        payload = self._sealer.open(sid)
        if payload is None or not isinstance(payload.get("v"), str):
            return None
        capabilities = payload.get("c")
        client_info = payload.get("i")
        client = ClientContext(
            protocol_version=payload["v"],
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            client_info=client_info if isinstance(client_info, dict) else None,
            session_id=sid,
        )
        session = FrontSession(sid, client, time.monotonic())
        self._sessions[sid] = session
        return session

    def end(self, sid: str) -> bool:
        self._ended[sid] = None
        if len(self._ended) > _MAX_TOMBSTONES:
            del self._ended[next(iter(self._ended))]
        session = self._sessions.pop(sid, None)
        if session is None:
            return False
        session.close()
        return True

    def expire_idle(self) -> int:
        cutoff = time.monotonic() - self._idle_timeout
        stale = [s.sid for s in self._sessions.values() if s.last_seen < cutoff and not s.streams and not s.inflight]
        for sid in stale:
            self.end(sid)
        return len(stale)

    def close_all(self) -> None:
        for sid in list(self._sessions):
            self.end(sid)
