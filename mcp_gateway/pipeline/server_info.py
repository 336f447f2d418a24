"""What the gateway says about itself: its capabilities, identity and instructions, in the handshake era's
`initialize` result and in 2026-07-28's `server/discover`."""

from __future__ import annotations

from typing import Any

from ..config import GatewayConfig
from ..upstream.pool import UpstreamPool
from ..version import GATEWAY_INFO, META_SERVER_INFO, SUPPORTED_VERSIONS

SERVER_CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "logging": {},
    "completions": {},
}


class ServerInfo:
    def __init__(self, config: GatewayConfig, pool: UpstreamPool) -> None:
        self._config = config
        self._pool = pool

    def identity(self) -> dict[str, Any]:
        return {**GATEWAY_INFO, "name": self._config.server.name}

    def instructions(self) -> str | None:
        """The operator's instructions, then each connected upstream's under its name."""
        parts = [self._config.server.instructions] if self._config.server.instructions else []
        for name, handle in self._pool.handles.items():
            session = handle.session
            if session is not None and session.instructions:
                parts.append(f"## {name}\n{session.instructions}")
        return "\n\n".join(parts) or None

    def initialize_result(self, protocol_version: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "protocolVersion": protocol_version,
            "capabilities": SERVER_CAPABILITIES,
            "serverInfo": self.identity(),
        }
        if instructions := self.instructions():
            result["instructions"] = instructions
        return result

    def discover_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "resultType": "complete",
            "supportedVersions": SUPPORTED_VERSIONS,
            "capabilities": SERVER_CAPABILITIES,
            "_meta": {META_SERVER_INFO: self.identity()},
            "ttlMs": self._config.server.list_ttl_ms,
            "cacheScope": "public",
        }
        if instructions := self.instructions():
            result["instructions"] = instructions
        return result
