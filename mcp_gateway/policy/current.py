"""The policy in force: one engine, swapped whole when the files change, read by every step that decides.

A gateway without `policies:` has none (`engine` stays None: everyone may use everything). Readers take
`current.engine` once per decision, so a reload between two reads of one call cannot mix two policies
within one decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .engine import PolicyEngine

Installed = Callable[[PolicyEngine, bool], Awaitable[None]]  # (new engine, replaced an earlier one?)


class CurrentPolicy:
    __slots__ = ("_listeners", "engine")

    def __init__(self) -> None:
        self.engine: PolicyEngine | None = None
        self._listeners: list[Installed] = []

    def on_install(self, listener: Installed) -> None:
        """Be told of every policy put in force (e.g. to have clients list again)."""
        self._listeners.append(listener)

    async def install(self, engine: PolicyEngine) -> None:
        replacing = self.engine is not None
        self.engine = engine
        for listener in self._listeners:
            await listener(engine, replacing)
