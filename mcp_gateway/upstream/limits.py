"""How large one message from an upstream may be (`max_message_bytes`), and what a reader does past it.

Every reader of upstream bytes (HTTP bodies after gzip/deflate decoding, SSE events, stdio lines) stops
buffering at the limit and raises `MessageTooLarge`; the transport turns that into an error for the one
call the message answered. On a stream shared by every call (stdio, legacy SSE) the message is skipped
without being buffered, and `response_id` tells from its first and last bytes which call it answered.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..jsonrpc import UPSTREAM_ERROR, McpError, valid_id

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
SAMPLE_BYTES = 1024  # how much of a skipped message's head and tail is kept to find its id

# A top-level member can be recognised without parsing when it is first (or second, after "jsonrpc") after
# the opening brace, or last (or second to last) before the closing one: a nested "id" is never at either
# end of the object, and inside a JSON string every quote is escaped (RFC 8259 §7), so `"id":` cannot be
# faked there. SDKs put it at one end: Python's write jsonrpc, id, result; TypeScript's result, jsonrpc, id.
_ID_VALUE = rb'(-?\d+|"(?:[^"\\]|\\.)*")'
_JSONRPC = rb'"jsonrpc"\s*:\s*"2\.0"'
_HEAD_ID = re.compile(rb"^\s*\{\s*(?:" + _JSONRPC + rb'\s*,\s*)?"id"\s*:\s*' + _ID_VALUE)
_TAIL_ID = re.compile(rb'[,{]\s*"id"\s*:\s*' + _ID_VALUE + rb"\s*(?:,\s*" + _JSONRPC + rb"\s*)?\}\s*$")


class MessageTooLarge(Exception):
    """A message passed `limit` bytes; `head` and `tail` are its first and last bytes, when it was skipped."""

    def __init__(self, limit: int, head: bytes = b"", tail: bytes = b"") -> None:
        super().__init__(f"message larger than {limit} bytes")
        self.limit = limit
        self.head = head
        self.tail = tail


def too_large(upstream: str, limit: int) -> McpError:
    """The error the caller gets: names the upstream, the limit and the setting that raises it."""
    return McpError(
        UPSTREAM_ERROR, f"upstream '{upstream}' sent a message larger than {format_size(limit)} (max_message_bytes)"
    )


def format_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def response_id(head: bytes, tail: bytes) -> Any | None:
    """The top-level id of the JSON object these bytes begin and end, when one end shows it; else None."""
    found = _HEAD_ID.match(head) or _TAIL_ID.search(tail)
    if found is None:
        return None
    try:
        value = orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return None
    return value if valid_id(value) else None
