"""Incremental Server-Sent Events decoder (WHATWG rules), fed with raw byte chunks.

One event's data may hold at most `limit` bytes (the upstream's `max_message_bytes`): past it the rest of
the event is read and thrown away, never buffered, and the event comes out with `dropped` set (its first
and last bytes kept, to tell which call it answered). `skipping` is true while that happens, so a reader
that cannot go on (a call's own stream) stops at once instead of reading the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import DEFAULT_MAX_MESSAGE_BYTES, SAMPLE_BYTES, MessageTooLarge


@dataclass(slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None
    dropped: MessageTooLarge | None = None  # set when the data passed the limit and was thrown away


class SseDecoder:
    __slots__ = (
        "_buffer",
        "_data",
        "_event",
        "_head",
        "_id",
        "_in_long_line",
        "_limit",
        "_retry",
        "_size",
        "_tail",
        "last_event_id",
        "retry",
        "skipping",
    )

    def __init__(self, limit: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self.skipping = False  # the current event passed the limit: its data is being thrown away
        self._limit = limit
        self._buffer = bytearray()  # the unterminated last line
        self._data: list[str] = []
        self._size = 0  # bytes of data in the current event
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._in_long_line = False  # inside a line longer than the limit: drop bytes up to its end
        self._head = b""
        self._tail = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        events: list[SseEvent] = []
        start = 0
        if self._in_long_line:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._tail = (self._tail + chunk)[-SAMPLE_BYTES:]
                return events
            self._tail = (self._tail + chunk[:newline])[-SAMPLE_BYTES:]
            self._in_long_line = False
            start = newline + 1
        # Lines end with \n or \r\n; only the new chunk is searched, so feeding is linear in the bytes.
        while (newline := chunk.find(b"\n", start)) >= 0:
            if self._buffer:
                self._buffer += chunk[start:newline]
                raw = bytes(self._buffer)
                self._buffer.clear()
            else:
                raw = chunk[start:newline]
            start = newline + 1
            event = self._line(raw[:-1] if raw.endswith(b"\r") else raw)
            if event is not None:
                events.append(event)
        if start < len(chunk):
            self._buffer += chunk[start:]
            if len(self._buffer) > self._limit:
                self._drop_long_line()
        return events

    def _drop_long_line(self) -> None:
        line = bytes(self._buffer)
        self._buffer.clear()
        self._in_long_line = True
        if not self.skipping:
            head = self._data[0].encode() if self._data else line.removeprefix(b"data:").removeprefix(b" ")
            self._skip(head[:SAMPLE_BYTES])
        self._tail = line[-SAMPLE_BYTES:]

    def _skip(self, head: bytes) -> None:
        self.skipping = True
        self._head = head
        self._data = []
        self._size = 0

    def _line(self, raw: bytes) -> SseEvent | None:
        if not raw:
            if self.skipping:
                dropped = MessageTooLarge(self._limit, self._head, self._tail)
                event = SseEvent(self._event or "message", "", self._id, self._retry, dropped)
                self.skipping, self._head, self._tail = False, b"", b""
                self._event, self._retry = "", None
                return event
            # An event with no data (e.g. a priming event) is not dispatched; its id/retry still count.
            data = "\n".join(self._data)
            if not data:
                self._data, self._event = [], ""
                return None
            event = SseEvent(self._event or "message", data, self._id, self._retry)
            self._data, self._event, self._retry, self._size = [], "", None, 0
            return event
        if raw.startswith(b":"):
            return None
        line = raw.decode("utf-8", errors="replace")
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            if self.skipping:
                self._tail = raw[-SAMPLE_BYTES:]
                return None
            self._size += len(raw) + 1
            if self._size > self._limit:
                self._skip((self._data[0] if self._data else value).encode()[:SAMPLE_BYTES])
                self._tail = raw[-SAMPLE_BYTES:]
                return None
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
