"""A `Call`: one client request in the internal stateless model, input only.

Every front (HTTP in both eras, stdio) turns a request into a `Call` carrying everything needed to serve
it: the 2026-07-28 per-request `_meta` envelope, or a handshake-era session's `initialize` data restored
for the call. The pipeline never writes to it; what happened comes back as a `Result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from ..auth.principal import Principal
from ..version import LOG_LEVELS, META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_VERSION


@dataclass(slots=True)
class ClientContext:
    """Who the client is: its protocol version, capabilities, info and log level.

    A handshake-era client's context lives as long as its session (the conversation layer updates its log
    level after `logging/setLevel`); a 2026-07-28 client sends a new one with every request.
    """

    protocol_version: str
    capabilities: dict[str, Any] = field(default_factory=dict)
    client_info: dict[str, Any] | None = None
    session_id: str | None = None
    log_level: str | None = None

    @classmethod
    def from_initialize(cls, params: dict[str, Any]) -> ClientContext:
        """A handshake-era client as its `initialize` describes it (unknown versions get the latest)."""
        requested = params.get("protocolVersion")
        capabilities = params.get("capabilities")
        client_info = params.get("clientInfo")
        return cls(
            protocol_version=requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION,
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            client_info=client_info if isinstance(client_info, dict) else None,
        )

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ClientContext:
        """A 2026-07-28 client as one request's `_meta` envelope describes it (already validated)."""
        capabilities = meta.get(META_CAPABILITIES)
        client_info = meta.get(META_CLIENT_INFO)
        level = meta.get(META_LOG_LEVEL)
        return cls(
            protocol_version=meta[META_VERSION],
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            client_info=client_info if isinstance(client_info, dict) else None,
            log_level=level if level in LOG_LEVELS else None,
        )

    @property
    def modern(self) -> bool:
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS


# Who calls when nothing authenticates (stdio without a key, in-process use): the operator on this machine.
LOCAL_PRINCIPAL = Principal("default", "local", method="local")


class CallSink(Protocol):
    """The client-bound stream of one call: where its notifications and server-to-client requests go."""

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request to the client on this call's stream and return the client's result."""
        ...


@dataclass(slots=True)
class Call:
    """One request as the client sent it, with who sent it. Input only: nothing downstream assigns to it."""

    method: str
    params: dict[str, Any]
    client: ClientContext
    principal: Principal = LOCAL_PRINCIPAL
    request_id: Any = None
    sink: CallSink | None = None
    headers: dict[bytes, bytes] | None = None  # the HTTP request's headers (trace context, session header)
    transport: str = "tcp"  # network.transport: tcp (HTTP) or pipe (stdio)
