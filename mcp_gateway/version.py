"""The gateway's own identity as it presents itself to clients and upstreams."""

__version__ = "0.1.0"
GATEWAY_NAME = "mcp-gateway"
GATEWAY_INFO = {"name": GATEWAY_NAME, "version": __version__}

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
