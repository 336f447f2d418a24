"""Keeps the policy in force current: loads the directory at start, and again whenever a file in it
changes, adding or removing a file included. A directory that fails to load leaves the last good policy
in force; the failure is logged with every problem and shown on /readyz.

A directory that cannot be read at all (too many open files, an I/O error) is not a verdict on the
files: the reloader reports it (`status.ok` false, the error, when it tries again), retries with
backoff, and once the directory reads again loads it afresh, so the status says what the files hold.
Nothing ends the reloading for good: an unexpected error is logged and retried the same way.
"""

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
_RETRY_FIRST = 0.5  # after a failed read: seconds to the first retry, doubled up to ...
_RETRY_MAX = 10.0
_UNREAD: tuple[Any, ...] = ("unread",)  # the stamp after a failed read: any readable state differs


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
        self._retry: float | None = None  # set while the directory cannot be read
        self.status: dict[str, Any] = {"ok": False, "error": "not loaded yet"}

    async def load_first(self) -> None:
        """The policy at start: a broken directory here stops the gateway (there is no last good one)."""
        self._stamp = self._fingerprint()
        engine = load_policies(self.directory)
        await self._apply(engine, len(self._stamp))

    def watch(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="policy:reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._retry or _POLL_SECONDS)
            try:
                await self._check()
            except PolicyError as exc:  # only unreadable directories get here
                self._failed(str(exc))
            except OSError as exc:
                self._failed(f"{self.directory}: cannot read: {exc.strerror or exc}")
            except Exception as exc:
                log.exception("policy reload failed unexpectedly")
                self._failed(f"{self.directory}: reload failed: {type(exc).__name__}: {exc}")

    async def _check(self) -> None:
        stamp = await self._settled()
        if stamp == self._stamp:
            return
        try:
            engine = await asyncio.to_thread(load_policies, self.directory)
        except PolicyError as exc:
            if exc.unreadable:
                raise
            self._recovered()
            self._stamp = stamp
            self.status = {**self.status, "ok": False, "error": str(exc), "failed_at": time.time()}
            self.status.pop("retry_in", None)
            log.error("policy change rejected, the previous policy stays in force:\n%s", exc)
            if self._on_result is not None:
                self._on_result(False)
            return
        self._recovered()
        self._stamp = stamp
        await self._apply(engine, len(stamp))
        log.info("policy reloaded: %d file(s), %d rule(s)", self.status["files"], len(engine))

    def _failed(self, error: str) -> None:
        """The directory could not be read: keep the policy in force, say so, try again later."""
        first = self._retry is None
        self._retry = _RETRY_FIRST if self._retry is None else min(self._retry * 2, _RETRY_MAX)
        self._stamp = _UNREAD
        since = time.time() if first else self.status.get("failed_at", time.time())
        self.status = {**self.status, "ok": False, "error": error, "failed_at": since, "retry_in": self._retry}
        if first:
            log.error("%s; the previous policy stays in force, retrying with backoff", error)
            if self._on_result is not None:
                self._on_result(False)

    def _recovered(self) -> None:
        if self._retry is not None:
            self._retry = None
            log.info("policy directory %s is readable again", self.directory)

    async def _apply(self, engine: PolicyEngine, files: int) -> None:
        await self._install(engine)
        self.status = {
            "ok": True,
            "directory": str(self.directory),
            "files": files,
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
        except PolicyError as exc:
            if exc.unreadable:
                raise
            return ("missing",)
        stamp = []
        for path in files:
            try:
                info = path.stat()
            except OSError:
                continue
            stamp.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(stamp)
