"""Bearer token validation: JWTs against the trusted issuers' keys, opaque tokens by introspection.

A JWT is accepted only if its `iss` names a configured issuer, its `alg` is on that issuer's allowlist
(`none` never is), its signature verifies with the issuer's key named by `kid`, its audience includes
the gateway's resource URI (RFC 8707), and exp/nbf/iat hold with the configured leeway.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from joserfc import jws
from joserfc.errors import JoseError

from ..config.model import IntrospectionConfig, IssuerConfig
from .keys import IssuerKeys, KeyUnavailable
from .principal import AuthError, invalid_token


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    issuer: str
    claims: dict[str, Any]
    expires_at: float | None
    method: str  # jwt | introspection


class TrustedIssuer:
    def __init__(self, config: IssuerConfig, audiences: frozenset[str], http: aiohttp.ClientSession) -> None:
        self.config = config
        self.issuer = config.issuer
        self.audiences = audiences
        self.algorithms = frozenset(config.algorithms)
        self.keys = IssuerKeys(config.issuer, config.jwks_uri, http, config.jwks_refetch_interval)
        self.introspection = Introspector(config.introspection, http) if config.introspection else None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def verify_jwt(token: str, issuers: dict[str, TrustedIssuer]) -> VerifiedToken:
    header, claims = _unverified_parts(token)
    issuer = issuers.get(claims.get("iss"))  # type: ignore[arg-type]
    if issuer is None:
        raise invalid_token("token issuer is not trusted")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        raise invalid_token(f"token algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    try:
        key = await issuer.keys.key_for(kid if isinstance(kid, str) else None)
    except KeyUnavailable:
        raise invalid_token("token signing key is unknown") from None
    try:
        jws.deserialize_compact(token, key, algorithms=[alg])
    except (JoseError, ValueError):
        raise invalid_token("token signature is invalid") from None
    check_claims(claims, issuer)
    exp = claims.get("exp")
    return VerifiedToken(issuer.issuer, claims, float(exp) if isinstance(exp, int | float) else None, "jwt")


def check_claims(claims: dict[str, Any], issuer: TrustedIssuer) -> None:
    now = time.time()
    leeway = issuer.config.leeway
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise invalid_token("token has no expiry")
    if exp + leeway < now:
        raise invalid_token("token has expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf - leeway > now:
        raise invalid_token("token is not valid yet")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat - leeway > now:
        raise invalid_token("token was issued in the future")
    if not issuer.audiences.intersection(_as_list(claims.get("aud"))):
        raise invalid_token("token audience is not this gateway")
    if not isinstance(claims.get("sub"), str) and not isinstance(claims.get("client_id"), str):
        raise invalid_token("token names no subject")


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        head, payload, _ = token.split(".")
        header = orjson.loads(_b64(head))
        claims = orjson.loads(_b64(payload))
    except (ValueError, orjson.JSONDecodeError):
        raise invalid_token("token is malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise invalid_token("token is malformed")
    return header, claims


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _as_list(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return (v for v in value if isinstance(v, str))
    return ()


class Introspector:
    """RFC 7662 client: asks the authorization server whether an opaque token is active."""

    def __init__(self, config: IntrospectionConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self._http = http
        self._auth = aiohttp.BasicAuth(config.client_id, config.client_secret)

    async def introspect(self, token: str, issuer: TrustedIssuer) -> VerifiedToken:
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
        if "exp" not in claims:
            claims["exp"] = time.time() + self.config.cache_seconds
        if "aud" in answer:
            check_claims(claims, issuer)
        exp = claims.get("exp")
        cache_until = min(float(exp), time.time() + self.config.cache_seconds)
        return VerifiedToken(issuer.issuer, claims, cache_until, "introspection")
