"""Which protocol era a request belongs to, and the 2026-07-28 envelope check.

Body first (a request carrying the `_meta` envelope is 2026-07-28, whatever its transport), as the
2026-07-28 versioning rules describe for dual-era servers; `initialize` always opens a handshake-era
conversation. The envelope check is the SDK's (`classify_inbound_request`), with the versions the gateway
serves named in -32022 so dual-era clients can fall back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.shared.inbound import classify_inbound_request

from ..calls import ClientContext
from ..jsonrpc import INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION, McpError
from ..version import META_CAPABILITIES, META_VERSION, MODERN_VERSION, SUPPORTED_VERSIONS

_MODERN_VERSIONS = [MODERN_VERSION]


def has_envelope(method: str, params: dict[str, Any]) -> bool:
    """Does this request carry the 2026-07-28 per-request `_meta` envelope?"""
    meta = params.get("_meta")
    return isinstance(meta, dict) and META_VERSION in meta and method != "initialize"


def modern_client(method: str, params: dict[str, Any], headers: Mapping[str, str] | None = None) -> ClientContext:
    """The client a 2026-07-28 request describes; `McpError` with the spec's code when its envelope (or,
    over HTTP, its routing headers) is wrong."""
    body = {"method": method, "params": params}
    verdict = classify_inbound_request(body, headers=headers, supported_modern_versions=_MODERN_VERSIONS)
    if not hasattr(verdict, "protocol_version"):
        data = getattr(verdict, "data", None)
        if verdict.code == UNSUPPORTED_PROTOCOL_VERSION:  # type: ignore[union-attr]
            data = {**(data or {}), "supported": SUPPORTED_VERSIONS}
        raise McpError(verdict.code, verdict.message, data)  # type: ignore[union-attr]
    meta = params["_meta"]
    if not isinstance(meta.get(META_CAPABILITIES), dict):
        raise McpError(INVALID_PARAMS, f"{META_CAPABILITIES} must be an object")
    return ClientContext.from_meta(meta)
