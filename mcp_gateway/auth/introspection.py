"""Opaque tokens, checked by asking their authorization server (RFC 7662), without letting unknown
tokens become load on it.

- A refusal (not active, or missing what every token needs) is remembered for a few seconds
  (`negative_cache_seconds`), so a client repeating a bad token costs one call, not one per request.
  The cache is keyed by a SHA-256 digest of the token, never the token itself, and capped in entries
  that all have the same size, so it is capped in bytes.
- Calls to each authorization server are bounded by a token bucket (`rate_per_second`, `burst`; per
  gateway process). A token left unchecked because the budget is spent gets 503 with Retry-After, not
  401: it may be a good token, and a client told `invalid_token` would drop it and log in again.
  Callers whose tokens are already verified are served from the authenticator's cache and never wait.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import aiohttp

from ..config.auth import IntrospectionConfig
from .claims import VerifiedToken, check_claims
from .principal import AuthError, invalid_token

if TYPE_CHECKING:
    from .tokens import TrustedIssuer

log = logging.getLogger("mcp_gateway.auth")

_REFUSALS = 10_000  # entries of ~200 bytes each (a 32-byte digest, a deadline, a shared description)
_THROTTLE_LOG_SECONDS = 60.0


class TokenBucket:
    """`rate` events per second on average, up to `burst` at once."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> float:
        """0 if an event may happen now (and counts it), else the seconds until one may."""
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class Refusals:
    """Tokens refused recently: digest -> (deadline, why), oldest dropped first."""

    def __init__(self, size: int = _REFUSALS) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> str | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[digest]
            return None
        return entry[1]

    def add(self, digest: bytes, why: str, seconds: float) -> None:
        if seconds <= 0:
            return
        self._entries[digest] = (time.monotonic() + seconds, why)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class Introspector:
    """RFC 7662 client for one authorization server."""

    def __init__(self, config: IntrospectionConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self._http = http
        self._auth = aiohttp.BasicAuth(config.client_id, config.client_secret)
        self._bucket = TokenBucket(config.rate_per_second, config.burst)
        self._throttle_logged = -math.inf

    async def introspect(self, token: str, issuer: TrustedIssuer) -> VerifiedToken:
        wait = self._bucket.take()
        if wait > 0:
            raise self._throttled(issuer.issuer, wait)
        try:
            async with self._http.post(
                self.config.endpoint, data={"token": token, "token_type_hint": "access_token"}, auth=self._auth
            ) as response:
                if response.status != 200:
                    raise AuthError(503, None, f"token introspection failed (HTTP {response.status})")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise AuthError(503, None, "token introspection is unavailable") from None
        if not isinstance(answer, dict) or answer.get("active") is not True:
            raise invalid_token("token is not active")
        if isinstance(answer.get("iss"), str) and answer["iss"] != issuer.issuer:
            raise invalid_token("token issuer is not trusted")
        claims = {**answer, "iss": issuer.issuer}
        if "exp" not in claims:  # RFC 7662 §2.2: optional; such an answer is trusted for cache_seconds
            claims["exp"] = time.time() + self.config.cache_seconds
        check_claims(claims, issuer, require_audience=self.config.require_audience)
        cache_until = min(float(claims["exp"]), time.time() + self.config.cache_seconds)
        return VerifiedToken(issuer.issuer, claims, cache_until, "introspection")

    def _throttled(self, issuer: str, wait: float) -> AuthError:
        now = time.monotonic()
        if now - self._throttle_logged >= _THROTTLE_LOG_SECONDS:
            self._throttle_logged = now
            log.warning(
                "issuer %s: token introspection is at its rate limit (%g/s, burst %d): unknown tokens get 503 "
                "until it refills (a flood of made-up tokens?)",
                issuer,
                self.config.rate_per_second,
                self.config.burst,
            )
        seconds = max(1, math.ceil(wait))
        return AuthError(
            503,
            None,
            f"the token could not be checked now: too many unknown tokens are being checked; retry in {seconds}s",
            retry_after=seconds,
        )


class Introspection:
    """Opaque tokens against every issuer that introspects, behind the cache of recent refusals."""

    def __init__(self, issuers: list[TrustedIssuer]) -> None:
        self._issuers = [issuer for issuer in issuers if issuer.introspection is not None]
        # A refusal is all issuers' verdict: remembered for the shortest time any of them allows.
        seconds = [issuer.introspection.config.negative_cache_seconds for issuer in issuers if issuer.introspection]
        self._refusal_seconds = min(seconds, default=0.0)
        self._refusals = Refusals()

    def __bool__(self) -> bool:
        return bool(self._issuers)

    async def verify(self, token: str) -> VerifiedToken:
        digest = hashlib.sha256(token.encode()).digest()
        refused = self._refusals.get(digest)
        if refused is not None:
            raise invalid_token(refused)
        refusal: AuthError | None = None
        unanswered: AuthError | None = None
        for issuer in self._issuers:
            assert issuer.introspection is not None
            try:
                return await issuer.introspection.introspect(token, issuer)
            except AuthError as exc:
                if exc.status == 401:
                    refusal = exc
                else:
                    unanswered = exc
        if unanswered is not None:
            raise unanswered  # an issuer that could not answer may be the one that issued it: not cached
        assert refusal is not None
        self._refusals.add(digest, refusal.description, self._refusal_seconds)
        raise refusal
