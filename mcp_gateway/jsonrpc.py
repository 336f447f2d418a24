"""JSON-RPC 2.0 primitives shared by every transport: errors and message encoding.

Messages are plain dicts parsed by orjson; encoding goes straight to bytes so transports never
re-serialise what they pass through.
"""

from __future__ import annotations

from typing import Any

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined server errors (legacy range); the gateway uses one code for "an upstream failed".
UPSTREAM_ERROR = -32000
REQUEST_TIMEOUT = -32001
RESOURCE_NOT_FOUND = -32002  # 2025-11-25 resource-not-found; 2026-07-28 uses -32602
RATE_LIMITED = -32005  # a policy limit (rate or concurrency); data: {limit, retryAfterSeconds}
REQUEST_CANCELLED = -32800  # the client cancelled the request (notifications/cancelled)
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022


class McpError(Exception):
    """An error that is reported to the caller as a JSON-RPC error object.

    The message is shown to clients: it must never carry secrets or stack traces.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    @classmethod
    def from_error(cls, error: Any) -> McpError:
        if not isinstance(error, dict):
            return cls(INTERNAL_ERROR, "malformed error object")
        code = error.get("code")
        return cls(
            code if isinstance(code, int) else INTERNAL_ERROR,
            str(error.get("message", "error")),
            error.get("data"),
        )


def dumps(message: Any) -> bytes:
    return orjson.dumps(message)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def result_message(request_id: Any, result: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_message(request_id: Any, error: McpError) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error.to_error()})


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def is_request(message: dict[str, Any]) -> bool:
    return "method" in message and "id" in message


def is_notification(message: dict[str, Any]) -> bool:
    return "method" in message and "id" not in message


def is_response(message: dict[str, Any]) -> bool:
    return "method" not in message and "id" in message and ("result" in message or "error" in message)


def valid_id(value: Any) -> bool:
    # JSON-RPC ids are strings or numbers; MCP forbids null. bool is an int subclass: reject it.
    return (isinstance(value, str | int) and not isinstance(value, bool)) or isinstance(value, float)
