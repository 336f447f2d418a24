"""An issuer's signing keys: JWKS found through its metadata, cached, refetched on an unknown `kid`.

Refetching is rate-limited per issuer, so a flood of tokens with made-up key ids cannot turn into a
flood of requests to the authorization server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from joserfc.jwk import KeySet

from .discovery import metadata_documents

log = logging.getLogger("mcp_gateway.auth")


class KeyUnavailable(Exception):
    pass


class IssuerKeys:
    def __init__(
        self, issuer: str, jwks_uri: str | None, http: aiohttp.ClientSession, refetch_interval: float = 10.0
    ) -> None:
        self.issuer = issuer
        self._refetch_interval = refetch_interval
        self._jwks_uri = jwks_uri
        self._http = http
        self._keys: dict[str, Any] = {}  # kid -> joserfc key
        self._unnamed: list[Any] = []  # keys without a kid
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        """The verification key named `kid` (or the only key, for tokens without a kid)."""
        key = self._lookup(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._lookup(kid)
            if key is None and time.monotonic() - self._fetched_at >= self._refetch_interval:
                await self._fetch()
                key = self._lookup(kid)
        if key is None:
            raise KeyUnavailable(f"no key with kid {kid!r} in the issuer's JWKS")
        return key

    def _lookup(self, kid: str | None) -> Any:
        if kid is not None:
            return self._keys.get(kid)
        if len(self._unnamed) == 1 and not self._keys:
            return self._unnamed[0]
        return None

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            uri = self._jwks_uri or await self._discover_jwks_uri()
            async with self._http.get(uri) as response:
                if response.status != 200:
                    raise KeyUnavailable(f"JWKS {uri} answered HTTP {response.status}")
                document = await response.json(content_type=None)
            keyset = KeySet.import_key_set(document)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("issuer %s: cannot fetch its keys: %s", self.issuer, exc)
            return
        except KeyUnavailable as exc:
            log.warning("issuer %s: %s", self.issuer, exc)
            return
        keys: dict[str, Any] = {}
        unnamed: list[Any] = []
        for key in keyset.keys:
            if key.kid:
                keys[key.kid] = key
            else:
                unnamed.append(key)
        self._keys, self._unnamed = keys, unnamed
        log.info("issuer %s: %d signing key(s) loaded", self.issuer, len(keys) + len(unnamed))

    async def _discover_jwks_uri(self) -> str:
        async for metadata in metadata_documents(self._http, self.issuer):
            if metadata.get("issuer") == self.issuer and metadata.get("jwks_uri"):
                self._jwks_uri = str(metadata["jwks_uri"])
                return self._jwks_uri
        raise KeyUnavailable(f"no metadata with a jwks_uri for issuer {self.issuer}")

    async def warm_up(self) -> None:
        """Fetch the keys at start, so the first caller does not wait for them."""
        async with self._lock:
            await self._fetch()
