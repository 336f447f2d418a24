"""`Authenticator`: turns a request's credentials into a `Principal`, or an `AuthError`.

Credentials, in order: an API key (`X-API-Key`, or a bearer token whose SHA-256 is a configured key),
a JWT from a trusted issuer, an opaque token an issuer's introspection endpoint vouches for. A verified
token is cached until it expires (introspection answers for at most their configured time), so the hot
path does one dict lookup and no cryptography; refused opaque tokens are remembered briefly and
introspection is rate-bounded (`introspection.py`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

import aiohttp

from ..config.auth import AuthConfig
from .claims import VerifiedToken
from .introspection import Introspection
from .principal import ANONYMOUS_SUBJECT, AuthError, Principal, insufficient_scope, invalid_token
from .tenants import TenantResolver
from .tokens import TrustedIssuer, looks_like_jwt, verify_jwt

log = logging.getLogger("mcp_gateway.auth")

_CACHE_SIZE = 50_000
_NO_CREDENTIALS = AuthError(401, None, "authentication required")


class Authenticator:
    def __init__(self, config: AuthConfig, resource: str) -> None:
        self.config = config
        self.resource = resource
        self.required = frozenset(config.required_scopes)
        self._api_keys = {key.sha256: key for key in config.api_keys}
        self._tenants = TenantResolver(config.tenants)
        self._http: aiohttp.ClientSession | None = None
        self._issuers: dict[str, TrustedIssuer] = {}
        self._introspection = Introspection([])
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._anonymous = Principal(config.anonymous_tenant, ANONYMOUS_SUBJECT, frozenset(), method="anonymous")

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        for issuer in self.config.issuers:
            audiences = frozenset(issuer.audience or [self.resource])
            trusted = TrustedIssuer(issuer, audiences, self._http)
            self._issuers[issuer.issuer] = trusted
            await trusted.keys.warm_up()
        self._introspection = Introspection(list(self._issuers.values()))
        if self.config.allow_anonymous:
            log.warning(
                "AUTHENTICATION IS OFF for callers without credentials (auth.allow_anonymous: true): anyone who "
                "can reach this gateway acts as tenant %r. Use this for local development only.",
                self.config.anonymous_tenant,
            )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def authenticate(self, authorization: bytes | None, api_key: bytes | None) -> Principal:
        """The caller, from the `Authorization` and `X-API-Key` header values; raises `AuthError`."""
        if api_key is not None:
            return self._by_api_key(api_key.decode("latin-1"))
        if authorization is None:
            if self.config.allow_anonymous:
                return self._anonymous
            raise _NO_CREDENTIALS
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise invalid_token("the Authorization header must be 'Bearer <token>'")
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at is None or cached.expires_at > time.time():
                return cached
            del self._cache[token]
        principal = await self._verify(token)
        self._remember(token, principal)
        return principal

    def check_scopes(self, principal: Principal) -> None:
        """Scopes every caller needs (`auth.required_scopes`): a 403 naming them if some are missing."""
        missing = principal.lacks(self.required)
        if missing:
            raise insufficient_scope(self.required | principal.scopes, f"missing scope(s): {' '.join(sorted(missing))}")

    async def _verify(self, token: str) -> Principal:
        key = self._api_keys.get(hashlib.sha256(token.encode()).hexdigest())
        if key is not None:
            return Principal(key.tenant, key.subject, frozenset(key.scopes), method="api_key")
        if looks_like_jwt(token):
            verified = await verify_jwt(token, self._issuers)
        elif self._introspection:
            verified = await self._introspection.verify(token)
        else:
            raise invalid_token("token is malformed" if self._issuers else "unknown credentials")
        return self._principal(verified, token)

    def _principal(self, verified: VerifiedToken, token: str) -> Principal:
        claims = verified.claims
        issuer_config = self._issuers[verified.issuer].config
        tenant = self._tenants.resolve(claims, issuer_config.tenant)
        if tenant is None:
            raise AuthError(403, "invalid_token", "the token maps to no tenant")
        scope = claims.get("scope") or claims.get("scp") or ""
        scopes = frozenset(scope.split() if isinstance(scope, str) else [s for s in scope if isinstance(s, str)])
        return Principal(
            tenant,
            verified.subject,
            scopes,
            claims,
            issuer=verified.issuer,
            method=verified.method,
            expires_at=verified.expires_at,
            token=token,
        )

    def _by_api_key(self, key: str) -> Principal:
        found = self._api_keys.get(hashlib.sha256(key.encode()).hexdigest())
        if found is None:
            raise invalid_token("unknown API key")
        return Principal(found.tenant, found.subject, frozenset(found.scopes), method="api_key")

    def _remember(self, token: str, principal: Principal) -> None:
        self._cache[token] = principal
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
