"""Incremental Server-Sent Events decoder (WHATWG rules), fed with raw byte chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SseDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_id", "_retry", "last_event_id", "retry")

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            # Lines end with \n, \r\n or \r; normalise the common cases cheaply.
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            raw = self._buffer[:newline]
            self._buffer = self._buffer[newline + 1 :]
            line = raw[:-1] if raw.endswith(b"\r") else raw
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            # An event with no data (e.g. a priming event) is not dispatched; its id/retry still count.
            data = "\n".join(self._data)
            if not data:
                self._data, self._event = [], ""
                return None
            event = SseEvent(self._event or "message", data, self._id, self._retry)
            self._data, self._event, self._retry = [], "", None
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
            self.last_event_id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
            self.retry = int(value)
        return None


async def iter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SseEvent]:
    decoder = SseDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
