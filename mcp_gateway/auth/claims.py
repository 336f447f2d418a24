"""The claim rules every accepted token meets, whether it came as a JWT or from introspection.

- `exp` is present and not past, `nbf`/`iat` are not in the future (with the issuer's leeway);
- `aud` names the gateway (RFC 8707 §2, RFC 9068 §4): its resource URI or the issuer's configured
  audiences. RFC 7662 makes `aud` optional in introspection answers, so an operator may accept answers
  without one for an authorization server that never sends it; one that is sent must still match;
- `sub` is a non-empty string (RFC 9068 §2.2 requires it). The subject is half of what sessions and
  `requestState` are bound to: two tokens without one would be the same caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .principal import invalid_token

if TYPE_CHECKING:
    from .tokens import TrustedIssuer


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    issuer: str
    claims: dict[str, Any]
    expires_at: float | None
    method: str  # jwt | introspection

    @property
    def subject(self) -> str:
        return self.claims["sub"]  # check_claims made sure it is a non-empty string


def check_claims(claims: dict[str, Any], issuer: TrustedIssuer, *, require_audience: bool = True) -> None:
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
    if "aud" in claims or require_audience:
        if "aud" not in claims:
            raise invalid_token("token names no audience; it must name this gateway")
        if not issuer.audiences.intersection(_as_list(claims["aud"])):
            raise invalid_token("token audience is not this gateway")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise invalid_token("token names no subject (sub)")


def _as_list(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return (v for v in value if isinstance(v, str))
    return ()
