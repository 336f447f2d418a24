"""What the gateway tells clients about its authorization: RFC 9728 Protected Resource Metadata and
the `WWW-Authenticate` challenges of 401 and 403 answers (MCP authorization, "Error Handling" and
"Scope Challenge Handling")."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..config.auth import AuthConfig
from .principal import AuthError

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def canonical_resource(config: AuthConfig | None, host: str, port: int, path: str) -> str:
    """The gateway's resource URI (token audience): configured, else derived from where it listens."""
    if config is not None and config.resource:
        parts = urlsplit(config.resource)
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}{path}"


def metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known path inserted between the host and the resource's path."""
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + path, "", ""))


def protected_resource_metadata(config: AuthConfig, resource: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [issuer.issuer for issuer in config.issuers],
        "bearer_methods_supported": ["header"],
    }
    # A minimal set; offline_access never belongs here (MCP authorization, "Scope Selection Strategy").
    scopes = [s for s in (config.scopes_supported or config.required_scopes) if s != "offline_access"]
    if scopes:
        document["scopes_supported"] = scopes
    if config.resource_name:
        document["resource_name"] = config.resource_name
    if config.resource_documentation:
        document["resource_documentation"] = config.resource_documentation
    return document


def challenge(error: AuthError, resource_metadata: str, default_scopes: frozenset[str]) -> str:
    """The `WWW-Authenticate` value: every scope the operation needs, in one challenge."""
    parts: list[str] = []
    if error.error is not None:  # RFC 6750 §3.1: no error code when no credentials were sent
        parts.append(f'error="{error.error}"')
    scopes = error.scopes or default_scopes
    if scopes:
        parts.append(f'scope="{" ".join(sorted(scopes))}"')
    parts.append(f'resource_metadata="{resource_metadata}"')
    if error.error is not None:
        parts.append(f'error_description="{_quoted(error.description)}"')
    return "Bearer " + ", ".join(parts)


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")
