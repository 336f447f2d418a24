"""Keeps the policy in force current: loads the directory at start, and again whenever a file in it
changes, adding or removing a file included. A directory that fails to load leaves the last good policy
in force; the failure is logged with every problem and shown on /readyz."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .engine import PolicyEngine
from .load import PolicyError, load_policies, policy_files

log = logging.getLogger("mcp_gateway.policy")

_POLL_SECONDS = 0.25
_SETTLE_SECONDS = 0.05  # a change is loaded once the files hold still this long ...
_SETTLE_TRIES = 20  # ... or after this many settle intervals of steady change


class PolicyReloader:
    def __init__(
        self,
        directory: Path,
        install: Callable[[PolicyEngine], Awaitable[None]],
        on_result: Callable[[bool], None] | None = None,
        settle: float = _SETTLE_SECONDS,
    ) -> None:
        self._settle = settle
        self._on_result = on_result  # told of every load: True applied, False rejected (the reload metric)
        self.directory = directory
        self._install = install
        self._stamp: tuple[Any, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self.status: dict[str, Any] = {"ok": False, "error": "not loaded yet"}

    async def load_first(self) -> None:
        """The policy at start: a broken directory here stops the gateway (there is no last good one)."""
        self._stamp = self._fingerprint()
        engine = load_policies(self.directory)
        await self._apply(engine)

    def watch(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="policy:reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            stamp = await self._settled()
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                engine = await asyncio.to_thread(load_policies, self.directory)
            except PolicyError as exc:
                self.status = {**self.status, "ok": False, "error": str(exc), "failed_at": time.time()}
                log.error("policy change rejected, the previous policy stays in force:\n%s", exc)
                if self._on_result is not None:
                    self._on_result(False)
                continue
            await self._apply(engine)
            log.info("policy reloaded: %d file(s), %d rule(s)", self.status["files"], len(engine))

    async def _apply(self, engine: PolicyEngine) -> None:
        await self._install(engine)
        self.status = {
            "ok": True,
            "directory": str(self.directory),
            "files": len(policy_files(self.directory)),
            "rules": len(engine),
            "loaded_at": time.time(),
        }
        if self._on_result is not None:
            self._on_result(True)

    async def _settled(self) -> tuple[Any, ...]:
        """The directory's fingerprint once it holds still. An editor that rewrites a file in place
        (truncate, then write) can be caught between the two; loading then would apply half a file."""
        stamp = self._fingerprint()
        for _ in range(_SETTLE_TRIES):
            if stamp == self._stamp:
                return stamp
            await asyncio.sleep(self._settle)
            again = self._fingerprint()
            if again == stamp:
                return stamp
            stamp = again
        return stamp  # still changing: load what is there; the next poll catches up

    def _fingerprint(self) -> tuple[Any, ...]:
        try:
            files = policy_files(self.directory)
        except PolicyError:
            return ("missing",)
        stamp = []
        for path in files:
            try:
                info = path.stat()
            except OSError:
                continue
            stamp.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(stamp)
