"""Each configured upstream's view: how its names are exposed (prefix, curation, renames) and which of its
tools need extra OAuth scopes."""

from __future__ import annotations

import fnmatch
import re

from ..config import GatewayConfig
from .catalog import UpstreamView
from .curation import Curator
from .naming import Namer


def build_views(config: GatewayConfig) -> dict[str, UpstreamView]:
    naming = config.naming
    views: dict[str, UpstreamView] = {}
    for name, upstream in config.upstreams.items():
        if not upstream.enabled:
            continue
        prefix = (upstream.prefix or name) if upstream.prefixing else None
        views[name] = UpstreamView(
            name,
            Namer(prefix, naming.separator, naming.max_length),
            {
                "tools": Curator.from_config(upstream.tools),
                "prompts": Curator.from_config(upstream.prompts),
                "resources": Curator.from_config(upstream.resources),
            },
            [(re.compile(fnmatch.translate(glob)), frozenset(scopes)) for glob, scopes in upstream.tool_scopes.items()],
        )
    return views
