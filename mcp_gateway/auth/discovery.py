"""Finding an authorization server's metadata: RFC 8414 first, then OpenID Connect discovery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

_METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


async def metadata_documents(http: aiohttp.ClientSession, issuer: str) -> AsyncIterator[dict[str, Any]]:
    """The issuer's metadata documents, in the order clients must try them; unreadable ones are skipped."""
    base = issuer.rstrip("/")
    for path in _METADATA_PATHS:
        async with http.get(base + path) as response:
            if response.status != 200:
                continue
            try:
                document = await response.json(content_type=None)
            except ValueError:
                continue
        if isinstance(document, dict):
            yield document
