"""The `auth:` section of `gateway.yaml`: who may call the gateway (OAuth issuers, API keys, tenants)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .strict import Strict as _Strict


class IntrospectionConfig(_Strict):
    """RFC 7662: opaque tokens are checked by asking the authorization server."""

    endpoint: str = Field(description="The introspection endpoint URL.")
    client_id: str
    client_secret: str = Field(description="Use ${ENV} for it.")
    cache_seconds: float = Field(
        60.0, ge=0, description="How long an active answer is reused (never past the token's exp)."
    )
    require_audience: bool = Field(
        True,
        description=(
            "Refuse answers without `aud` (RFC 8707). false: accept them, for authorization servers that never "
            "send one; an `aud` that is sent must still name the gateway."
        ),
    )
    negative_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How long a refused token is answered 401 without asking again (0: ask every time).",
    )
    rate_per_second: float = Field(
        20.0,
        gt=0,
        description=(
            "Most introspection calls per second, per gateway process (a token bucket); past it, tokens "
            "that need checking get 503 with Retry-After, so a flood of made-up tokens cannot load the server."
        ),
    )
    burst: int = Field(40, ge=1, description="Introspection calls allowed at once above `rate_per_second`.")


class IssuerConfig(_Strict):
    """An authorization server whose tokens the gateway accepts."""

    issuer: str = Field(description="Exact `iss` value; its RFC 8414 / OIDC metadata gives the JWKS.")
    audience: list[str] | None = Field(
        None, description="Accepted `aud` values; default: the gateway's own resource URI (RFC 8707)."
    )
    algorithms: list[
        Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
    ] = Field(default_factory=lambda: ["RS256", "ES256"], description="Accepted JWS algorithms (never `none`).")
    jwks_uri: str | None = Field(None, description="Default: from the issuer's metadata.")
    jwks_refetch_interval: float = Field(
        10.0, ge=0, description="Least seconds between JWKS fetches caused by tokens with an unknown `kid`."
    )
    leeway: float = Field(30.0, ge=0, le=300, description="Seconds of clock skew tolerated on exp/nbf/iat.")
    introspection: IntrospectionConfig | None = Field(None, description="For opaque (non-JWT) tokens.")
    tenant: str | None = Field(None, description="Every caller of this issuer belongs to this tenant.")


class ApiKeyConfig(_Strict):
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the key (`mcp-gateway auth hash-key` prints it)."
    )
    tenant: str
    subject: str
    scopes: list[str] = Field(default_factory=list)


class TenantRules(_Strict):
    """How a token's claims decide its tenant; first match wins: claim, groups, issuer, default."""

    claim: str | None = Field("tenant", description="A claim holding the tenant name.")
    groups_claim: str = Field("groups", description="A claim holding the caller's groups (list or string).")
    groups: dict[str, str] = Field(default_factory=dict, description="Group -> tenant.")
    default: str | None = Field(None, description="Tenant when no rule matches; none: such callers are refused.")


class AuthConfig(_Strict):
    resource: str | None = Field(
        None,
        description=(
            "The gateway's canonical resource URI (token audience, RFC 8707), e.g. https://gw.example.com/mcp. "
            "Default: http://<host>:<port><path>."
        ),
    )
    allow_anonymous: bool = Field(
        False, description="Serve callers without credentials (local development only; logged loudly at start)."
    )
    anonymous_tenant: str = "default"
    issuers: list[IssuerConfig] = Field(default_factory=list)
    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    tenants: TenantRules = Field(default_factory=TenantRules)
    scopes_supported: list[str] = Field(
        default_factory=list, description="Advertised in the protected resource metadata."
    )
    required_scopes: list[str] = Field(default_factory=list, description="Scopes every caller needs.")
    resource_name: str | None = None
    resource_documentation: str | None = None
