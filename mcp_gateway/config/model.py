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


class SealingKey(_Strict):
    id: int = Field(ge=0, le=255, description="Key id carried in each token, so old keys still open old tokens.")
    secret: str = Field(min_length=16, description="Key material (at least 16 characters; use ${ENV} for it).")


class StateConfig(_Strict):
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: one process. redis: several workers or replicas share sessions and events."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Used when backend is redis.")
    key_prefix: str = Field("mcpgw", pattern=r"^[A-Za-z0-9_.:-]{1,32}$", description="Prefix of Redis keys/channels.")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    path: str = Field("/mcp", pattern=r"^/")
    name: str = "mcp-gateway"
    instructions: str | None = Field(None, description="Sent to clients on initialize; upstreams' are appended.")
    allowed_hosts: list[str] | None = Field(
        None, description="Host header allow-list (DNS rebinding). Default: localhost names when bound locally."
    )
    allowed_origins: list[str] | None = Field(None, description="Origin allow-list. Default: localhost origins.")
    session_idle_timeout: float = Field(1800.0, gt=0, description="Seconds before an unused session expires.")
    page_size: int = Field(200, ge=1, le=10000, description="Items per page the gateway returns on list calls.")
    drain_timeout: float = Field(30.0, ge=0, description="Seconds SIGTERM waits for calls in flight.")
    session_secret: str | None = Field(
        None,
        description=(
            "Key material for sealed tokens (session ids, requestState), shared by all workers/replicas; "
            "key id 1. Default: random per process. Use `session_keys` to rotate."
        ),
    )
    session_keys: list[SealingKey] = Field(
        default_factory=list,
        description="Keyring for sealed tokens, newest first: the first seals, all open. Overrides session_secret.",
    )
    lenient_version_header: bool = Field(
        True,
        description=(
            "Serve a 2026-07-28 request whose MCP-Protocol-Version header names a handshake-era version "
            "(Claude connectors send this; anthropics/claude-code#93290) instead of answering -32020. "
            "Set false for strict spec behaviour."
        ),
    )
    input_wait: float = Field(
        300.0,
        gt=0,
        description=(
            "Seconds a call parked on an input_required answer (2026-07-28 client, handshake-era upstream "
            "asking for sampling/elicitation/roots) waits for the client's retry before it is cancelled."
        ),
    )
    list_ttl_ms: int = Field(
        0,
        ge=0,
        description=(
            "ttlMs for 2026-07-28 clients on lists and reads of upstreams that state none (handshake-era "
            "ones); the aggregate is the minimum over the upstreams involved."
        ),
    )
    admin_token: str | None = Field(
        None,
        description=(
            "When set (use ${ENV}), GET /metrics needs `Authorization: Bearer <token>` and /readyz shows its "
            "details (upstreams, policy path, process) only with it; without, /readyz answers just `ready`."
        ),
    )
    max_parked_calls: int = Field(
        1000, ge=1, description="Calls waiting for a 2026-07-28 client's input_required answer, per process."
    )
    max_listen_uris: int = Field(
        100, ge=0, description="resourceSubscriptions one subscriptions/listen may ask for (more: -32602)."
    )
    max_sessions_per_caller: int = Field(
        256,
        ge=1,
        description=(
            "Handshake-era sessions one caller (tenant and subject) holds per process; one more ends its least "
            "recently used idle session, or is refused (429) when all are busy."
        ),
    )
    max_streams_per_session: int = Field(
        4, ge=1, description="Open GET streams one handshake-era session may hold (more: 429)."
    )
    # The front door's connection limits (mcp_gateway/edge): what one client connection may cost.
    max_header_bytes: int = Field(
        61440,
        ge=1024,
        le=1048576,
        description=(
            "Largest request head (request line and header fields, as sent; chunked trailers likewise): larger "
            "ones get 431 and the connection is closed before the rest is read. Default 60 KiB, as Envoy."
        ),
    )
    max_url_bytes: int = Field(
        8192, ge=256, le=1048576, description="Longest request target (path and query): longer gets 414."
    )
    max_headers: int = Field(100, ge=8, le=10000, description="Most header fields per request: more gets 431.")
    header_timeout: float = Field(
        10.0,
        gt=0,
        description=(
            "Seconds a connection may take to send a whole request head once it has sent a byte of it; then it "
            "gets 408 and is closed (slowloris)."
        ),
    )
    keep_alive_timeout: float = Field(
        5.0,
        gt=0,
        description=(
            "Seconds a connection may sit idle (just opened, or between requests) before it is closed without a "
            "response."
        ),
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        description=(
            "Client connections per worker process (each worker has its own cap and file descriptors); over it, "
            "new connections get 503 and are closed at once. Default and ceiling: the open-file limit "
            "(RLIMIT_NOFILE, raised to its hard limit at start) minus the descriptors already open and fd_reserve."
        ),
    )
    fd_reserve: int | None = Field(
        None,
        ge=0,
        description=(
            "File descriptors per worker kept out of reach of client connections, for upstream connections, the "
            "state backend, log files and the export process. Default: a quarter of the open-file limit, at least "
            "256 (at most half)."
        ),
    )

    @model_validator(mode="after")
    def _url_fits_head(self) -> ServerConfig:
        if self.max_url_bytes > self.max_header_bytes:
            raise ValueError("max_url_bytes cannot exceed max_header_bytes (the request line is part of the head)")
        return self


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
