"""What a decision needs besides the call's arguments, worked out once per (caller, target) and cached.

The cache is keyed on what the client sends (a tool name, a resource URI, a model), so it is bounded
twice (ARCHITECTURE rule 4): a target longer than `MAX_KEYED_NAME` is keyed by its SHA-256 digest, so
no key holds a long client string (a repeated one still costs a hash, not a walk of every rule); and the
approximate bytes of all entries are counted, the cache being emptied when they pass its budget. A
cached decision stays one dict lookup: the accounting only runs on a miss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compiled import CompiledLimit, CompiledRule

MAX_KEYED_NAME = 1024  # characters
BUDGET = 32 * 1024 * 1024  # bytes
# What an entry costs beyond its strings: the key tuple, the dict slot, the plan and its lists
# (measured with tracemalloc: ~800 bytes for short names, 1,000 rules).
_ENTRY_BYTES = 800


@dataclass(slots=True)
class Plan:
    """What can be decided without the call's arguments, for one (caller, target)."""

    static_deny: CompiledRule | None
    deny_if: list[CompiledRule] = field(default_factory=list)
    require: list[CompiledRule] = field(default_factory=list)
    static_allow: CompiledRule | None = None
    allow_if: list[CompiledRule] = field(default_factory=list)
    default_allow: bool = False
    default_source: str = "no policy file for this tenant"
    chain: list[str] = field(default_factory=list)
    variables: frozenset[str] = frozenset()  # what this target's conditions read
    limits: tuple[CompiledLimit, ...] = ()

    @property
    def visible(self) -> bool:
        if self.static_deny is not None:
            return False
        return self.static_allow is not None or bool(self.allow_if) or self.default_allow


def keyed_name(name: str) -> str | bytes:
    """The target as it goes into a cache key: itself, or its digest when it is long."""
    if len(name) <= MAX_KEYED_NAME:
        return name
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()


class PlanCache:
    """Plans by key, bounded in bytes: emptied when the entries' approximate size passes the budget."""

    __slots__ = ("_plans", "budget", "get", "size")

    def __init__(self, budget: int = BUDGET) -> None:
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self.get: Callable[[tuple[Any, ...]], Plan | None] = self._plans.get  # the hot path, bound once
        self.budget = budget
        self.size = 0  # approximate bytes held

    def __len__(self) -> int:
        return len(self._plans)

    def put(self, key: tuple[Any, ...], plan: Plan) -> None:
        cost = _ENTRY_BYTES + sum(len(part) for part in key if isinstance(part, str | bytes))
        cost += sum(len(line) for line in plan.chain)
        if self.size + cost > self.budget:
            self._plans.clear()  # the same dict: `get` stays bound to it
            self.size = 0
        self._plans[key] = plan
        self.size += cost
