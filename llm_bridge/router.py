"""Where a model name goes: aliases, virtual models (weighted spread over targets of one priority,
fallback to the next priority), bounded retry rounds with backoff, and a short cool-down for targets that
just failed so the next requests try the healthy ones first."""

from __future__ import annotations

import asyncio
import fnmatch
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .config import BridgeConfig, ModelRoute, Target
from .errors import BridgeError
from .providers.base import Provider

T = TypeVar("T")

_MAX_BACKOFF = 2.0
# Errors that are the backend's problem (its key, its load), so another backend may well succeed.
_ALWAYS_FALL_BACK = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class Resolved:
    name: str  # the name the client used
    route: ModelRoute


@dataclass(slots=True)
class Served:
    """Which target answered, and what each earlier try ended with."""

    backend: str
    provider: Provider
    model: str
    attempts: list[tuple[str, str]]


class Router:
    def __init__(self, config: BridgeConfig, providers: dict[str, Provider]) -> None:
        self.providers = providers
        self._exact = {name: route for name, route in config.models.items() if not _is_glob(name)}
        self._globs = [(name, route) for name, route in config.models.items() if _is_glob(name)]
        self._direct = config.direct
        self._cool_until: dict[tuple[str, str | None], float] = {}

    def names(self) -> list[str]:
        """The model names a client can list (globs are patterns, not names)."""
        return list(self._exact)

    def resolve(self, name: str) -> Resolved | None:
        route = self._exact.get(name)
        if route is not None:
            return Resolved(name, route)
        for pattern, route in self._globs:
            if fnmatch.fnmatchcase(name, pattern):
                return Resolved(name, route)
        if self._direct and "/" in name:
            backend, _, model = name.partition("/")
            if backend in self.providers and model:
                return Resolved(name, ModelRoute(targets=[Target(backend=backend, model=model)]))
        return None

    async def serve(self, resolved: Resolved, operation: Callable[[Provider, str], Awaitable[T]]) -> tuple[T, Served]:
        """Run `operation` on the route's targets in order until one succeeds; retry rounds with backoff."""
        route = resolved.route
        attempts: list[tuple[str, str]] = []
        last: BridgeError | None = None
        for round_ in range(route.retries + 1):
            if round_:
                await asyncio.sleep(_backoff(route, round_, last))
            for target in self._order(route):
                provider = self.providers[target.backend]
                model = target.model or resolved.name
                try:
                    result = await operation(provider, model)
                except BridgeError as exc:
                    exc.backend = exc.backend or target.backend
                    attempts.append((target.backend, f"{exc.status} {exc.type}"))
                    if not (exc.status in route.fallback_on or exc.status in _ALWAYS_FALL_BACK):
                        raise
                    if route.cooldown:
                        self._cool_until[(target.backend, target.model)] = time.monotonic() + route.cooldown
                    last = exc
                    continue
                self._cool_until.pop((target.backend, target.model), None)
                return result, Served(target.backend, provider, model, attempts)
        assert last is not None
        if len(attempts) > 1:  # the client sees the last answer's status, and what came before it
            earlier = ", ".join(f"{backend}: {outcome}" for backend, outcome in attempts[:-1])
            last.message = f"{last.message} (every target failed; before: {earlier})"
            last.args = (last.message,)
        raise last

    def _order(self, route: ModelRoute) -> list[Target]:
        targets = route.targets
        if len(targets) == 1:
            return list(targets)
        now = time.monotonic()
        cooling = self._cool_until

        def key(target: Target) -> tuple[bool, int, float]:
            cool = cooling.get((target.backend, target.model), 0.0) > now
            # Weighted random order within a priority (Efraimidis-Spirakis): larger key first.
            spread = random.random() ** (1.0 / target.weight) if target.weight else 0.0
            return (cool, target.priority, -spread)

        return sorted(targets, key=key)


def _backoff(route: ModelRoute, round_: int, last: BridgeError | None) -> float:
    if last is not None and last.retry_after:
        return min(_MAX_BACKOFF, last.retry_after)
    return min(_MAX_BACKOFF, route.backoff_ms / 1000 * 2 ** (round_ - 1)) * random.uniform(0.8, 1.2)


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")
