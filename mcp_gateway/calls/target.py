"""A `Target`: what a call is about once routed: the exposed name (or canonical URI) the caller used, the
upstream that owns it, and what the upstream is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..catalog.catalog import Entry


@dataclass(slots=True)
class Target:
    kind: str  # the policy kind: tools | prompts | resources | resourceTemplates
    name: str | None  # the exposed name or canonical URI; None for a whole list or a name that is not one
    upstream: str | None = None
    original: str | None = None  # the upstream's own name or URI
    entry: Entry | None = None  # the catalog entry, when the name is in the catalog
    arguments: dict[str, Any] | None = None  # what the upstream gets (after a tenant view's fixed/hidden args)
    listing: bool = False  # a list of this kind rather than one item

    @property
    def in_catalog(self) -> bool:
        """Named by the catalog, so safe as a metric label (a client's spelling of a name never is)."""
        return self.entry is not None

    @property
    def scopes(self) -> frozenset[str]:
        """OAuth scopes this target needs beyond its upstream's (`tool_scopes`)."""
        return self.entry.scopes if self.entry is not None else frozenset()
