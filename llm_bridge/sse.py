"""Server-Sent Events for LLM streams, at the byte level: each event keeps its raw bytes so an
OpenAI-to-OpenAI stream can be forwarded unchanged while the bridge still reads usage from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SseItem:
    event: str | None  # the `event:` field (Anthropic names every event; OpenAI names none)
    data: bytes  # the `data:` lines joined
    raw: bytes  # the whole event, blank line included


class SseSplitter:
    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SseItem]:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        items: list[SseItem] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            item = _parse(buffer[start : end + 2])
            if item is not None:
                items.append(item)
            start = end + 2
        self._buffer = buffer[start:]
        return items

    def close(self) -> list[SseItem]:
        """An event not ended by a blank line when the stream closes (some servers omit the last one)."""
        rest, self._buffer = self._buffer, b""
        item = _parse(rest + b"\n") if rest.strip() else None
        return [item] if item is not None else []


def _parse(block: bytes) -> SseItem | None:
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            event = value.decode("utf-8", "replace")
    if not data and event is None:
        return None  # comments and keep-alives
    return SseItem(event, b"\n".join(data), block)


def encode(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
