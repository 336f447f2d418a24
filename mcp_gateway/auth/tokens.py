"""Bearer token validation: JWTs against the trusted issuers' keys (opaque tokens: `introspection`).

A JWT is accepted only if its `iss` names a configured issuer, its `alg` is on that issuer's allowlist
(`none` never is), its signature verifies with the issuer's key named by `kid`, and its claims meet
`claims.check_claims` (exp/nbf/iat with the configured leeway, an audience naming the gateway, a subject).
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
from joserfc import jws
from joserfc.errors import JoseError

from ..config.auth import IssuerConfig
from .claims import VerifiedToken, check_claims
from .introspection import Introspector
from .keys import IssuerKeys, KeyUnavailable
from .principal import invalid_token


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
