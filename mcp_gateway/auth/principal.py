"""Who is calling: the `Principal` every request carries after authentication, and auth failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    subject: str
    scopes: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict, compare=False)
    issuer: str | None = None
    method: str = "anonymous"  # jwt | introspection | api_key | anonymous | local
    expires_at: float | None = None  # epoch seconds; None: does not expire
    # The caller's own bearer token, kept only for RFC 8693 token exchange; never sent upstream as is.
    token: str | None = field(default=None, repr=False, compare=False)

    @property
    def binding(self) -> bytes:
        """What sealed tokens (session ids, requestState) are bound to: the tenant and subject."""
        return f"{self.tenant}\x00{self.subject}".encode()

    def lacks(self, scopes: frozenset[str]) -> frozenset[str]:
        return scopes - self.scopes


ANONYMOUS_SUBJECT = "anonymous"


class AuthError(Exception):
    """A request that cannot be served as asked: 401 (no or bad credentials) or 403 (missing scopes).

    `scopes` are the scopes the operation needs (named in the challenge so clients can step up);
    `retry_after` the seconds a 503 asks the client to wait (sent as Retry-After).
    """

    def __init__(
        self,
        status: int,
        error: str | None,
        description: str,
        scopes: frozenset[str] = frozenset(),
        retry_after: int | None = None,
    ):
        super().__init__(description)
        self.status = status
        self.error = error  # RFC 6750 error code; None when no credentials were sent at all
        self.description = description
        self.scopes = scopes
        self.retry_after = retry_after


def invalid_token(description: str) -> AuthError:
    return AuthError(401, "invalid_token", description)


def insufficient_scope(needed: frozenset[str], description: str) -> AuthError:
    return AuthError(403, "insufficient_scope", description, needed)
