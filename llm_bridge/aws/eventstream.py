"""The `application/vnd.amazon.eventstream` binary framing (ConverseStream, InvokeModelWithResponseStream).

A message is: prelude (total length u32, headers length u32, CRC32 of those 8 bytes), headers, payload, and a
CRC32 of everything before it. All integers are big-endian. A header is: name length u8, name, type u8, value.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_CRC_LEN = 4
# Far above any real message (AWS caps payloads at 16 MiB, headers at 128 KiB): a bigger length means the
# stream is corrupt, and waiting for that many bytes would only buffer garbage.
MAX_MESSAGE = 24 * 1024 * 1024
MAX_HEADERS = 128 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventStreamError(Exception):
    """The byte stream is not valid event-stream framing (bad CRC, bad lengths, unknown header type)."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    headers: dict[str, Any]  # ':event-type', ':message-type' ('event' | 'exception' | 'error'), ':content-type', ...
    payload: bytes


class EventStreamDecoder:
    """Incremental decoder: feed it bytes as they arrive, split anywhere; it returns the messages completed."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buf += data
        out: list[EventMessage] = []
        while len(self._buf) >= _PRELUDE_LEN:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(self._buf)
            # Check the prelude before trusting its lengths: a corrupt length must not make us wait forever.
            if zlib.crc32(self._buf[:8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if total > MAX_MESSAGE or headers_len > MAX_HEADERS or total < _PRELUDE_LEN + headers_len + _CRC_LEN:
                raise EventStreamError(f"bad lengths: total {total}, headers {headers_len}")
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            out.append(_decode_frame(frame, headers_len))
        return out

    @property
    def pending(self) -> int:
        """Bytes held for a message not yet complete (non-zero at end of stream means it was cut short)."""
        return len(self._buf)


def _decode_frame(frame: bytes, headers_len: int) -> EventMessage:
    (message_crc,) = struct.unpack_from(">I", frame, len(frame) - _CRC_LEN)
    if zlib.crc32(frame[:-_CRC_LEN]) != message_crc:
        raise EventStreamError("message CRC mismatch")
    headers_end = _PRELUDE_LEN + headers_len
    return EventMessage(headers=decode_headers(frame[_PRELUDE_LEN:headers_end]), payload=frame[headers_end:-_CRC_LEN])


# Fixed-size header value types: type id -> struct format.
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


def decode_headers(data: bytes) -> dict[str, Any]:
    """Header block -> dict. Types: 0/1 bool, 2-5 int8..int64, 6 bytes, 7 string, 8 timestamp (ms), 9 uuid."""
    headers: dict[str, Any] = {}
    pos = 0
    try:
        while pos < len(data):
            name_len = data[pos]
            name = data[pos + 1 : pos + 1 + name_len].decode()
            pos += 1 + name_len
            kind = data[pos]
            pos += 1
            value: Any
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED:
                fmt = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, data, pos)
                pos += struct.calcsize(fmt)
                if kind == 8:
                    value = _EPOCH + timedelta(milliseconds=value)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, pos)
                raw = data[pos + 2 : pos + 2 + length]
                if len(raw) != length:
                    raise EventStreamError("header value runs past the header block")
                value = raw.decode() if kind == 7 else bytes(raw)
                pos += 2 + length
            elif kind == 9:
                if pos + 16 > len(data):
                    raise EventStreamError("header value runs past the header block")
                value = uuid.UUID(bytes=bytes(data[pos : pos + 16]))
                pos += 16
            else:
                raise EventStreamError(f"unknown header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from exc
    return headers


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message with string headers (what test servers and fakes need)."""
    block = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        block += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", 7, len(raw_value)) + raw_value
    total = _PRELUDE_LEN + len(block) + len(payload) + _CRC_LEN
    head = struct.pack(">II", total, len(block))
    body = head + struct.pack(">I", zlib.crc32(head)) + bytes(block) + payload
    return body + struct.pack(">I", zlib.crc32(body))
