"""Who is calling: credentials to a `Principal` (tenant, subject, scopes), and the OAuth resource-server
documents and challenges that tell clients how to log in."""

from .authenticator import Authenticator
from .principal import AuthError, Principal, insufficient_scope, invalid_token

__all__ = ["AuthError", "Authenticator", "Principal", "insufficient_scope", "invalid_token"]
