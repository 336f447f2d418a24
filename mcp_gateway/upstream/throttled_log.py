"""Warnings about what an upstream keeps doing wrong, logged once and then at most once a minute.

A broken or hostile upstream can repeat the same fault thousands of times a second (invalid ids, oversized
messages); one line per fault would flood the log and cost more than dropping the message does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

_INTERVAL = 60.0


class ThrottledLog:
    """One per upstream connection; `kind` names the fault (a constant in the code, so the state is bounded)."""

    __slots__ = ("_log", "_seen")

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._seen: dict[str, tuple[float, int]] = {}  # kind -> (when last logged, how many since)

    def warning(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._seen.get(kind)
        if last is not None and now - last[0] < _INTERVAL:
            self._seen[kind] = (last[0], last[1] + 1)
            return
        if last is not None and last[1]:
            message += f" ({last[1]} more like it since the last warning)"
        self._seen[kind] = (now, 0)
        self._log.warning(message, *args)
