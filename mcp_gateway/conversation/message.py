"""One JSON-RPC 2.0 message from a client, checked before anything acts on it.

Every malformed shape gets the error JSON-RPC assigns (-32700 for bad JSON, -32600 for a bad envelope or
id, -32602 for params that are not an object) and never an exception: a hostile id (an array, an object,
a number that would come back changed) is refused with `id: null`, and the connection goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from ..jsonrpc import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, McpError

_MAX_ID_LENGTH = 1024  # a string id is echoed back (and logged): bounded
_EXACT_FLOAT = 2.0**53  # larger floats cannot come back exactly as the client wrote them
# Deepest nesting accepted. What the gateway passes on is serialised again (sealed sessions, spans, upstream
# requests), and orjson refuses to serialise past 254 levels: deeper input would fail later, as a 500.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Request:
    id: Any
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    """The client's answer to a request the gateway sent it (handshake era only)."""

    id: Any
    message: dict[str, Any]  # with `result` or `error`


Message = Request | Notification | Response


class Invalid(Exception):
    """A message that cannot be served; `id` is the request's when it could be read, else None."""

    def __init__(self, error: McpError, request_id: Any = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.id = request_id


def parse(raw: bytes | str) -> Message:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid(McpError(PARSE_ERROR, "Parse error: invalid JSON")) from None
    if too_deep(raw, message):
        request_id = message.get("id") if isinstance(message, dict) else None
        error = McpError(INVALID_REQUEST, f"Invalid Request: nested deeper than {MAX_DEPTH} levels")
        raise Invalid(error, request_id if valid_id(request_id) else None)
    return read(message)


def too_deep(raw: bytes | str, value: Any, limit: int = MAX_DEPTH) -> bool:
    """Is `value` (parsed from `raw`) nested deeper than `limit`? Counting brackets in the raw text is cheap and
    rules out almost every message before any walk."""
    opening = raw.count(b"{") + raw.count(b"[") if isinstance(raw, bytes) else raw.count("{") + raw.count("[")
    if opening <= limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return False


def read(message: Any) -> Message:
    """The message an already-parsed JSON value is, or `Invalid`."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        detail = "batches are not supported" if isinstance(message, list) else "not a JSON-RPC 2.0 message"
        raise Invalid(McpError(INVALID_REQUEST, f"Invalid Request: {detail}"))
    method = message.get("method")
    has_id = "id" in message
    request_id = message.get("id")
    if has_id and not valid_id(request_id):
        raise Invalid(McpError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer of 64 bits"))
    if method is None:
        if has_id and ("result" in message or "error" in message):
            return Response(request_id, message)
        raise Invalid(McpError(INVALID_REQUEST, "Invalid Request: no method"), request_id)
    if not isinstance(method, str):
        raise Invalid(McpError(INVALID_REQUEST, "Invalid Request: method must be a string"), request_id)
    params = message.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise Invalid(McpError(INVALID_PARAMS, "params must be an object"), request_id)
    if has_id:
        return Request(request_id, method, params)
    return Notification(method, params)


def valid_id(value: Any) -> bool:
    """JSON-RPC ids are strings or numbers, and MCP forbids null. A bool is not a number here; a float is
    accepted only when it comes back exactly as sent (orjson reads integers beyond 64 bits as floats)."""
    if isinstance(value, str):
        return len(value) <= _MAX_ID_LENGTH
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and abs(value) <= _EXACT_FLOAT
