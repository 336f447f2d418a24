"""`server:` in gateway.yaml: where the gateway listens, what it says about itself, its sessions, and the
bounds it holds every client to (the front door's and the conversation's; docs/SECURITY.md lists them)."""

from __future__ import annotations

from pydantic import Field, model_validator

from .strict import Strict as _Strict


class SealingKey(_Strict):
    id: int = Field(ge=0, le=255, description="Key id carried in each token, so old keys still open old tokens.")
    secret: str = Field(min_length=16, description="Key material (at least 16 characters; use ${ENV} for it).")


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
