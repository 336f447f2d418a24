"""The handler of every MCP method the gateway serves, per protocol era."""

from __future__ import annotations

from collections.abc import Iterable

from ...calls import Call
from .base import Method, UnknownMethod

# Methods the 2026-07-28 revision removed: a modern client gets -32601 for them.
REMOVED_IN_MODERN = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
MODERN_ONLY = frozenset({"server/discover"})


class MethodTable:
    """Which handler serves a call: by method name, within what the client's era has."""

    def __init__(self, methods: Iterable[Method]) -> None:
        every = {method.name: method for method in methods}
        self._legacy = {name: m for name, m in every.items() if name not in MODERN_ONLY}
        self._modern = {name: m for name, m in every.items() if name not in REMOVED_IN_MODERN}

    def lookup(self, call: Call) -> Method:
        modern = call.client.modern
        found = (self._modern if modern else self._legacy).get(call.method)
        return found if found is not None else UnknownMethod(call.method, modern=modern)


__all__ = ["REMOVED_IN_MODERN", "Method", "MethodTable"]
