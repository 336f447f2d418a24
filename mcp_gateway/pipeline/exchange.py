"""`Exchange`: one call on its way through the pipeline.

The `Call` is what the client sent and stays as it was; what the steps learn on the way lives here: the
method's handler, the target routing found, what a listing may show this caller, and the span whose
context goes into the upstream request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..calls import Call, Target
from ..catalog.catalog import Entry

if TYPE_CHECKING:
    from .methods.base import Method


class TraceContext(Protocol):
    """The span of a call, as the steps after telemetry see it: its W3C context for what goes upstream."""

    def headers(self) -> dict[str, str]: ...

    def meta(self, meta: dict[str, Any] | None) -> dict[str, Any]: ...


@dataclass(slots=True)
class ListView:
    """What one caller may see of a list: every step that hides entries adds its predicate and a key
    naming what the predicate depends on (callers with equal keys share one filtered list per snapshot)."""

    keys: list[Any] = field(default_factory=list)
    keeps: list[Callable[[Entry], bool]] = field(default_factory=list)
    shown: Callable[[Entry], dict[str, Any]] | None = None  # an entry's definition as this caller sees it
    # What the listing chooses from when it is not the catalog's list (a listen's resource URIs).
    candidates: list[Entry] | None = None

    def hide_unless(self, key: Any, keep: Callable[[Entry], bool]) -> None:
        self.keys.append(key)
        self.keeps.append(keep)

    def filter(self) -> tuple[Any, Callable[[Entry], bool]] | None:
        """(cache key, predicate) for `Snapshot.page`, or None when nothing is hidden."""
        keeps = self.keeps
        if not keeps:
            return None
        if len(keeps) == 1:
            return tuple(self.keys), keeps[0]
        return tuple(self.keys), lambda entry: all(keep(entry) for keep in keeps)

    def admitted(self, entries: list[Entry]) -> list[Entry]:
        """The entries this caller may see, filtered now (not cached: for candidates of one request)."""
        found = self.filter()
        if found is None:
            return entries
        keep = found[1]
        return [entry for entry in entries if keep(entry)]


@dataclass(slots=True)
class Exchange:
    call: Call
    method: Method
    target: Target | None = None
    listing: ListView | None = None  # set by routing for list methods
    trace: TraceContext | None = None  # set by the telemetry step when the call is traced
