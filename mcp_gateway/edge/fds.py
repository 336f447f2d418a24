"""File descriptors: how many client connections one process may hold and still open its own.

Every client connection is one descriptor; so is every upstream connection, stdio pipe, log file and the
export process's pipes. A process that lets clients take them all cannot reach its upstreams ("Too many
open files") and cannot even refuse new clients cleanly. So the soft limit is raised to the hard one at
start, and clients get what is left after the descriptors already open and a reserve.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

_MIN_RESERVE = 256


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    max_connections: int
    nofile: int  # the soft RLIMIT_NOFILE after raising it
    open_fds: int
    reserve: int
    lowered_from: int | None = None  # a configured cap that did not fit under the limit

    def describe(self) -> str:
        return (
            f"up to {self.max_connections} client connections (RLIMIT_NOFILE {self.nofile}, "
            f"{self.open_fds} descriptors open, {self.reserve} reserved)"
        )


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one (no privilege needed); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


def open_fds() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 0


def default_reserve(nofile: int) -> int:
    return min(nofile // 2, max(_MIN_RESERVE, nofile // 4))


def connection_budget(configured: int | None, reserve: int | None, nofile: int, open_now: int) -> ConnectionBudget:
    """The cap for this process: the configured one, never above what the limit leaves after the reserve."""
    kept = default_reserve(nofile) if reserve is None else reserve
    room = max(1, nofile - open_now - kept)
    if configured is None:
        return ConnectionBudget(room, nofile, open_now, kept)
    if configured > room:
        return ConnectionBudget(room, nofile, open_now, kept, lowered_from=configured)
    return ConnectionBudget(configured, nofile, open_now, kept)
