"""The HTTP front's door check: every request is authenticated before it is parsed, and a refusal
carries the challenge a client needs to log in (401) or to ask for more scopes (403)."""

from __future__ import annotations

from typing import Any

from ..auth import Authenticator, AuthError, Principal
from ..auth.metadata import challenge, metadata_url
from ..jsonrpc import INVALID_REQUEST, McpError
from .responses import send_error


class AuthGate:
    def __init__(self, authenticator: Authenticator, resource: str) -> None:
        self.authenticator = authenticator
        self.resource_metadata = metadata_url(resource)
        config = authenticator.config
        self._default_scopes = frozenset(config.required_scopes)

    async def principal(self, headers: dict[bytes, bytes]) -> Principal:
        principal = await self.authenticator.authenticate(headers.get(b"authorization"), headers.get(b"x-api-key"))
        self.authenticator.check_scopes(principal)
        return principal

    def challenge_headers(self, error: AuthError) -> list[tuple[bytes, bytes]]:
        if error.retry_after is not None:
            return [(b"retry-after", str(error.retry_after).encode())]
        if error.status not in (401, 403):
            return []
        return [(b"www-authenticate", challenge(error, self.resource_metadata, self._default_scopes).encode())]

    async def refuse(self, send: Any, error: AuthError, request_id: Any = None) -> None:
        extra = self.challenge_headers(error) or None
        await send_error(send, error.status, request_id, McpError(INVALID_REQUEST, error.description), extra)
