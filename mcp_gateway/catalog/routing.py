"""Which upstream an exposed resource URI belongs to, and the upstream's own spelling of it.

Prefixed upstreams are recognised from the URI alone (their prefix follows the scheme), so URIs expanded
from templates route without a lookup. URIs of unprefixed upstreams are looked up in the catalog, then
matched against their templates' schemes; failing that, the first unprefixed upstream gets the call (it
may serve URIs it never listed).
"""

from __future__ import annotations

from .catalog import Catalog, UpstreamView
from .naming import uri_scheme_prefix


class ResourceRouter:
    def __init__(self, catalog: Catalog, views: dict[str, UpstreamView]) -> None:
        self._catalog = catalog
        self._views = views
        self._prefixed = [view for view in views.values() if view.namer.prefix]
        self._unprefixed = [view for view in views.values() if not view.namer.prefix]

    @property
    def views(self) -> dict[str, UpstreamView]:
        return self._views

    def resolve(self, uri: str) -> tuple[str, str] | None:
        """(upstream, the upstream's URI), or None when no upstream serves this URI."""
        for view in self._prefixed:
            original = view.namer.original_uri(uri)
            if original is not None:
                return view.name, original
        if not self._unprefixed:
            return None
        snapshot = self._catalog.snapshot
        entry = snapshot.index["resources"].get(uri)
        if entry is not None and self._views[entry.upstream].namer.prefix is None:
            return entry.upstream, uri
        scheme = uri_scheme_prefix(uri)
        for template in snapshot.lists["resourceTemplates"]:
            owner = self._views[template.upstream]
            if owner.namer.prefix is None and scheme and template.original.startswith(scheme):
                return owner.name, uri
        return self._unprefixed[0].name, uri
