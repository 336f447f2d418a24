"""The limits every client connection is held to, and the per-server state the protocol reads them from."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

from uvicorn.server import ServerState

log = logging.getLogger("mcp_gateway.edge")

_NOTICE_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Plain settings (see `server.*` in config/model.py for what each one means)."""

    max_head_bytes: int = 61440
    max_url_bytes: int = 8192
    max_headers: int = 100
    header_timeout: float = 10.0
    max_connections: int | None = None  # None: from the open-file limit
    fd_reserve: int | None = None  # None: from the open-file limit


class Notice:
    """A log line about hostile or excess traffic, at most once per interval, with counts since the last one.

    A flood must not turn into a flood of log lines: the first event logs at once, the rest are summed.
    """

    __slots__ = ("_counts", "_interval", "_level", "_message", "_next")

    def __init__(self, level: int, message: str, interval: float = _NOTICE_INTERVAL) -> None:
        self._level = level
        self._message = message
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._next = 0.0

    def note(self, kind: str, **details: object) -> None:
        self._counts[kind] += 1
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        counts = ", ".join(f"{count} {name}" for name, count in sorted(self._counts.items()))
        self._counts.clear()
        log.log(self._level, self._message, {"counts": counts, **details})


class EdgeState(ServerState):
    """uvicorn's per-server state (connections, tasks), plus the limits and notices `EdgeProtocol` uses."""

    def __init__(self, limits: EdgeLimits, max_connections: int) -> None:
        super().__init__()
        self.limits = limits
        self.max_connections = max_connections
        self.over_cap = Notice(
            logging.WARNING,
            "connection cap reached: %(open)d client connections open (server.max_connections: %(cap)d per "
            "worker); new connections get 503 (%(counts)s since the last notice)",
        )
        self.refusals = Notice(
            logging.INFO, "refused client requests at the connection layer (%(counts)s since the last notice)"
        )
