"""The `gateway.yaml` data model. Validation errors are turned into file/line/key messages by `load`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from llm_bridge.config import BridgeConfig

# The auth models live in `auth.py`; imported here too, so `config.model` still names every model.
from .auth import ApiKeyConfig as ApiKeyConfig
from .auth import AuthConfig
from .auth import IntrospectionConfig as IntrospectionConfig
from .auth import IssuerConfig as IssuerConfig
from .auth import TenantRules as TenantRules
from .server import SealingKey as SealingKey
from .server import ServerConfig
from .strict import Strict as _Strict

UPSTREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ToolCuration(_Strict):
    """Which of an upstream's tools (or prompts, resources) are exposed, and how."""

    include: list[str] = Field(default_factory=lambda: ["*"], description="Glob patterns of names to expose.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of names to hide.")
    rename: dict[str, str] = Field(
        default_factory=dict, description="Upstream name -> exposed name (before prefixing)."
    )
    descriptions: dict[str, str] = Field(default_factory=dict, description="Upstream name -> description override.")


class TokenEndpoint(_Strict):
    token_url: str | None = Field(None, description="The token endpoint; default: from `issuer`'s metadata.")
    issuer: str | None = Field(None, description="Authorization server whose RFC 8414 metadata names the endpoint.")
    client_id: str
    client_secret: str = Field(description="Use ${ENV} for it.")
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    scope: str | None = Field(None, description="Space-separated scopes to ask for.")
    resource: str | None = Field(None, description="RFC 8707 resource (token audience); default: the upstream's url.")

    @model_validator(mode="after")
    def _endpoint(self) -> TokenEndpoint:
        if not self.token_url and not self.issuer:
            raise ValueError("set token_url or issuer")
        return self


class HeaderCredentials(_Strict):
    """A fixed secret (API key, personal access token) from the environment or a file."""

    type: Literal["header"] = "header"
    header: str = Field("Authorization", description="Header to carry it.")
    value: str | None = Field(None, description="The secret; use ${ENV}.")
    value_file: str | None = Field(None, description="A file holding the secret (re-read when it changes).")
    format: str = Field("Bearer {value}", description='How the header value is built; "{value}" for raw keys.')

    @model_validator(mode="after")
    def _one_source(self) -> HeaderCredentials:
        if (self.value is None) == (self.value_file is None):
            raise ValueError("set exactly one of value and value_file")
        return self


class ClientCredentials(TokenEndpoint):
    """OAuth 2 client credentials: the gateway's own token for this upstream, cached and refreshed."""

    type: Literal["client_credentials"] = "client_credentials"


class TokenExchangeCredentials(TokenEndpoint):
    """RFC 8693: each caller's token is exchanged for one meant for this upstream (cached per caller).
    The gateway's own traffic (listing, health) uses a client-credentials token of the same client."""

    type: Literal["token_exchange"] = "token_exchange"
    audience: str | None = Field(None, description="RFC 8693 audience, if the server wants one beside resource.")


class PerSubjectCredentials(_Strict):
    """A credential per caller (e.g. each user's personal access token) from a secrets file."""

    type: Literal["per_subject"] = "per_subject"
    file: str | None = Field(
        None, description="YAML/JSON mapping 'tenant/subject' or 'subject' -> secret (re-read on change)."
    )
    redis_hash: str | None = Field(
        None, description="A Redis hash (on state.redis_url) with the same fields; read per caller, cached 30 s."
    )
    header: str = "Authorization"
    format: str = "Bearer {value}"
    service_value: str | None = Field(None, description="The gateway's own credential for listing and health.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Where `redis_hash` lives.")

    @model_validator(mode="after")
    def _one_store(self) -> PerSubjectCredentials:
        if (self.file is None) == (self.redis_hash is None):
            raise ValueError("set exactly one of file and redis_hash")
        return self


UpstreamCredentials = Annotated[
    HeaderCredentials | ClientCredentials | TokenExchangeCredentials | PerSubjectCredentials,
    Field(discriminator="type"),
]


class _UpstreamBase(_Strict):
    prefix: str | None = Field(None, description="Name prefix; defaults to the upstream's name.")
    prefixing: bool = Field(True, description="Set false to expose this upstream's names unprefixed.")
    timeout: float = Field(60.0, gt=0, description="Seconds a single call may take before it fails.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect and handshake.")
    health_interval: float = Field(
        30.0, ge=0, description="Seconds between liveness probes of an idle HTTP upstream; 0 turns them off."
    )
    protocol: Literal["auto", "2025-11-25", "2026-07-28"] = Field(
        "auto", description="Era to speak upstream: auto probes server/discover then falls back to initialize."
    )
    max_message_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest message accepted from this upstream (a result, a notification, one SSE event, one stdio "
            "line), counted after gzip/deflate decoding; a call whose answer is larger fails with an error naming "
            "the upstream and this limit."
        ),
    )
    tools: ToolCuration = Field(default_factory=ToolCuration)
    prompts: ToolCuration = Field(default_factory=ToolCuration)
    resources: ToolCuration = Field(default_factory=ToolCuration)
    enabled: bool = True
    required_scopes: list[str] = Field(
        default_factory=list,
        description="Scopes a caller needs to see and use this upstream; a call without them is a 403 step-up.",
    )
    tool_scopes: dict[str, list[str]] = Field(
        default_factory=dict, description="Tool name glob -> scopes needed to call it (403 step-up)."
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,48}", value):
            raise ValueError("prefix must be 1-48 characters of A-Z a-z 0-9 _ . -")
        return value


class HttpUpstream(_UpstreamBase):
    transport: Literal["streamable_http"] = "streamable_http"
    url: str = Field(description="The upstream MCP endpoint, e.g. http://127.0.0.1:3001/mcp")
    headers: dict[str, str] = Field(default_factory=dict, description="Static headers sent on every request.")
    credentials: UpstreamCredentials | None = Field(
        None, description="How the gateway authenticates to this upstream; the caller's token is never forwarded."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("url must be an http:// or https:// URL")
        return value


class SseUpstream(HttpUpstream):
    """The 2024-11-05 HTTP+SSE transport: `url` is the SSE endpoint (usually .../sse)."""

    transport: Literal["sse"] = "sse"  # type: ignore[assignment]


class StdioUpstream(_UpstreamBase):
    transport: Literal["stdio"] = "stdio"
    command: str = Field(
        min_length=1,
        description=(
            "Executable to start; `python`/`python3` mean the gateway's own interpreter, and bare names not "
            "on PATH are also looked for beside it (its virtualenv's bin)."
        ),
    )
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for the process.")
    cwd: str | None = Field(None, description="Working directory; relative to `base_dir` (the config's folder).")
    restart_backoff_max: float = Field(30.0, gt=0, description="Longest wait between restarts, seconds.")


Upstream = Annotated[HttpUpstream | SseUpstream | StdioUpstream, Field(discriminator="transport")]


class NamingConfig(_Strict):
    separator: str = Field("__", min_length=1, max_length=4, description="Between prefix and upstream name.")
    max_length: int = Field(64, ge=16, le=128, description="Exposed tool names are shortened to this length.")

    @field_validator("separator")
    @classmethod
    def _separator_chars(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("separator must use only A-Z a-z 0-9 _ . -")
        return value


class StateConfig(_Strict):
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: one process. redis: several workers or replicas share sessions and events."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Used when backend is redis.")
    key_prefix: str = Field("mcpgw", pattern=r"^[A-Za-z0-9_.:-]{1,32}$", description="Prefix of Redis keys/channels.")


class PolicyConfig(_Strict):
    dir: str = Field(description="Directory of policy files (*.yaml); relative to the config file's folder.")
    reload: bool = Field(True, description="Apply edits while running (a broken edit keeps the last good policy).")


class TracingConfig(_Strict):
    exporter: Literal["otlp", "otlp-http", "otlp-grpc", "console", "none"] | None = Field(
        None,
        description=(
            "Where spans go. Default: OTEL_TRACES_EXPORTER (otlp, console, none), else none. `otlp` picks HTTP or "
            "gRPC from OTEL_EXPORTER_OTLP_PROTOCOL."
        ),
    )
    endpoint: str | None = Field(None, description="OTLP endpoint; default: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT.")
    headers: dict[str, str] = Field(default_factory=dict, description="OTLP headers (e.g. an API key); use ${ENV}.")
    service_name: str | None = Field(None, description="Default: OTEL_SERVICE_NAME, else mcp-gateway.")
    project_name: str | None = Field(None, description="openinference.project.name: the Phoenix project.")
    sample_ratio: float | None = Field(None, ge=0, le=1, description="Default: OTEL_TRACES_SAMPLER(_ARG), else 1.")
    plumbing: bool = Field(
        False,
        description=(
            "Also trace protocol plumbing (initialize, server/discover, ping, lists, logging/setLevel, listen); "
            "off by default so it does not fill an agent's session in Phoenix."
        ),
    )


class MetricsConfig(_Strict):
    prometheus: bool = Field(True, description="Serve GET /metrics (Prometheus text; summed over --workers).")
    otlp: bool = Field(False, description="Also push metrics by OTLP (endpoint and protocol as for traces).")
    otlp_interval: float = Field(60.0, gt=0, description="Seconds between OTLP metric pushes.")


class TelemetryConfig(_Strict):
    access_log: str | None = Field(
        None,
        description=(
            'Where the access log goes (one JSON line per request): a file path, "-" for stdout, or "otlp" for '
            "OTLP log records (endpoint as for traces)."
        ),
    )
    session_header: str = Field(
        "agent-session-id", description="The request header whose value becomes session.id on spans."
    )
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)


class GatewayConfig(_Strict):
    base_dir: str | None = Field(
        None, description="Directory that relative stdio `cwd`s resolve against; default: the config file's."
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    naming: NamingConfig = Field(default_factory=NamingConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    auth: AuthConfig | None = Field(
        None, description="Who may call the gateway. Absent: anonymous access (local development), logged loudly."
    )
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    policies: PolicyConfig | None = Field(
        None, description="Per-tenant policy files; absent: every caller may use everything."
    )
    upstreams: dict[str, Upstream] = Field(default_factory=dict)
    llm: BridgeConfig | None = Field(
        None, description="LLM backends and model routes served at /v1/* (OpenAI- and Anthropic-compatible)."
    )

    @field_validator("upstreams")
    @classmethod
    def _names(cls, value: dict[str, Upstream]) -> dict[str, Upstream]:
        for name in value:
            if not UPSTREAM_NAME.match(name):
                raise ValueError(f"upstream name {name!r} must match {UPSTREAM_NAME.pattern}")
        return value

    @model_validator(mode="after")
    def _prefixes_unique(self) -> GatewayConfig:
        seen: dict[str, str] = {}
        for name, upstream in self.upstreams.items():
            if not upstream.enabled or not upstream.prefixing:
                continue
            prefix = (upstream.prefix or name).lower()
            if prefix in seen:
                raise ValueError(
                    f"upstreams {seen[prefix]!r} and {name!r} share the prefix {prefix!r}: "
                    "their names would collide; set a distinct `prefix`"
                )
            seen[prefix] = name
        return self
