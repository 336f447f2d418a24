"""Server-Sent Events encoding for the HTTP front."""

from __future__ import annotations

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]
KEEPALIVE = b": keep-alive\n\n"


def event(data: bytes, event_id: int | str | None = None) -> bytes:
    head = b"event: message\n"
    if event_id is not None:
        head += b"id: " + str(event_id).encode() + b"\n"
    return head + b"data: " + data + b"\n\n"


def priming(event_id: int | str, retry_ms: int | None = None) -> bytes:
    """An event with an id and empty data: lets a client resume (SEP-1699) before anything is sent."""
    out = b"id: " + str(event_id).encode() + b"\ndata: \n"
    if retry_ms is not None:
        out += b"retry: " + str(retry_ms).encode() + b"\n"
    return out + b"\n"
