"""The gateway's identity, and the MCP wire constants every layer shares (versions, `_meta` keys, log levels)."""

__version__ = "0.1.0"
GATEWAY_NAME = "mcp-gateway"
GATEWAY_INFO = {"name": GATEWAY_NAME, "version": __version__}

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"

# Per-request `_meta` keys of 2026-07-28 (basic/index.mdx, "_meta"; SEP-2575).
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION = "io.modelcontextprotocol/subscriptionId"

# Log levels, least to most severe.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

# Versions named in `server/discover` and in -32022 errors: the modern one first, and the handshake version so a
# dual-era client that cannot speak ours falls back to `initialize` (as the 2026-07-28 spec's own -32022 example).
SUPPORTED_VERSIONS = [MODERN_VERSION, LEGACY_VERSION]
