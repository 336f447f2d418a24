"""OTLP/protobuf trace requests written straight from flat spans (`export_process.flatten`'s format).

The SDK builds a protobuf message object per span, attribute and value (~80 us of Python for a span with 20
attributes); here the wire bytes are concatenated directly, several times faster. The output is byte for byte
what `encode_spans([rebuild(flat, resource), ...]).SerializePartialToString()` gives (fields in number order,
as upb writes them), except that a None attribute value is left out where the SDK would write a valueless
attribute (the SDK's own spans never hold None: `set_attribute` drops it).

Wire format: https://protobuf.dev/programming-guides/encoding/ ; messages: opentelemetry/proto/trace/v1.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

_INT64_MIN, _INT64_MAX, _UINT64 = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
# Span.flags: the spec's "has is_remote" bit, plus "is remote" for a remote parent (links are always remote
# once flattened). Trace flags stay out of the low byte, as in the SDK.
_FLAGS_LOCAL, _FLAGS_REMOTE = 0x100, 0x300


def _varint_of(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_varint_of(n) for n in range(1 << 14)]  # every length under 16 KiB is one list index
_SMALL_LIMIT = len(_SMALL)


def _varint(n: int) -> bytes:
    return _SMALL[n] if n < _SMALL_LIMIT else _varint_of(n)


def _field(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field: tag, length, data."""
    n = len(data)
    return tag + (_SMALL[n] if n < _SMALL_LIMIT else _varint_of(n)) + data


# -- AnyValue (common/v1) ---------------------------------------------------------------------------------------

_TRUE, _FALSE = b"\x10\x01", b"\x10\x00"
_DOUBLE = struct.Struct("<Bd")


def _string(value: str) -> bytes:
    return _field(b"\x0a", value.encode())


def _bool(value: bool) -> bytes:
    return _TRUE if value else _FALSE


def _int(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} does not fit an int64")  # the SDK drops the attribute too
    return b"\x18" + _varint(value & _UINT64)


def _double(value: float) -> bytes:
    return _DOUBLE.pack(0x21, value)


def _bytes(value: bytes) -> bytes:
    return _field(b"\x3a", value)


def _array(values: Sequence[Any]) -> bytes:
    return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in values]))


def _kvlist(values: Mapping[Any, Any]) -> bytes:
    return _field(b"\x32", b"".join([_field(b"\x0a", _key_value(str(k), v)) for k, v in values.items()]))


# Exact types first (one dict lookup); subclasses go through `_any_value`'s isinstance chain.
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    str: _string,
    bool: _bool,
    int: _int,
    float: _double,
    bytes: _bytes,
    list: _array,
    tuple: _array,
}


def _any_value(value: Any) -> bytes:
    """AnyValue's content, in the SDK's order of checks (bool before int, str and bytes before Sequence)."""
    encode = _ENCODERS.get(type(value))
    if encode is not None:
        return encode(value)
    if value is None:
        return b""  # an empty AnyValue, as the SDK writes for None inside an array
    for kind, encode in ((bool, _bool), (str, _string), (int, _int), (float, _double), (bytes, _bytes)):
        if isinstance(value, kind):
            return encode(value)
    if isinstance(value, Sequence):
        return _array(value)
    if isinstance(value, Mapping):
        return _kvlist(value)
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return (_field(b"\x0a", key.encode()) if key else b"") + _field(b"\x12", _any_value(value))


# Attribute keys repeat from span to span: their encoded KeyValue.key field is kept (bounded: keys such as
# llm.input_messages.<i>.* grow with conversations).
_KEYS: dict[str, bytes] = {}
_KEYS_LIMIT = 8192


def _key(key: str) -> bytes:
    if len(_KEYS) >= _KEYS_LIMIT:
        _KEYS.clear()
    encoded = _KEYS[key] = _field(b"\x0a", key.encode()) if key else b""
    return encoded


def _put_attributes(out: list[bytes], tag: bytes, attributes: Mapping[str, Any]) -> None:
    """Repeated KeyValue fields; a value that cannot be encoded costs its attribute only, as in the SDK."""
    small, limit, keys, encoders = _SMALL, _SMALL_LIMIT, _KEYS, _ENCODERS
    for key, value in attributes.items():
        if value is None:
            continue
        try:
            field = keys.get(key) or _key(key)
            if type(value) is str:  # most values: inlined, no AnyValue bytes built on the way
                data = value.encode()
                m = len(data)
                data_length = small[m] if m < limit else _varint_of(m)
                n = 1 + len(data_length) + m
                value_length = small[n] if n < limit else _varint_of(n)
                size = len(field) + 1 + len(value_length) + n
                out += (tag, small[size] if size < limit else _varint_of(size), field, b"\x12", value_length)
                out += (b"\x0a", data_length, data)
                continue
            encode = encoders.get(type(value))
            value_bytes = encode(value) if encode is not None else _any_value(value)
        except Exception as exc:  # the SDK logs and skips such an attribute; so do we
            log.warning("span attribute %r not exported: %s", key, exc)
            continue
        n = len(value_bytes)
        value_length = small[n] if n < limit else _varint_of(n)
        size = len(field) + 1 + len(value_length) + n
        out += (tag, small[size] if size < limit else _varint_of(size), field, b"\x12", value_length, value_bytes)


# -- Span (trace/v1) --------------------------------------------------------------------------------------------

_IDS = struct.Struct(">2BQQ2BQ")  # trace_id (16 bytes) and span_id (8 bytes), big-endian as in the SDK
_PARENT = struct.Struct(">2BQ")
_TIMES = struct.Struct("<BQBQ")
_TIME = struct.Struct("<BQ")
_FIXED32 = struct.Struct("<I")
_KINDS = {kind: b"\x30" + bytes([kind + 1]) for kind in range(5)}  # SDK SpanKind value -> proto enum (+1)
_SPAN_FLAGS = {False: b"\x85\x01" + _FIXED32.pack(_FLAGS_LOCAL), True: b"\x85\x01" + _FIXED32.pack(_FLAGS_REMOTE)}
_LINK_FLAGS = b"\x35" + _FIXED32.pack(_FLAGS_REMOTE)
_ERROR = 2


def _ids(trace_id: int, span_id: int) -> bytes:
    return _IDS.pack(0x0A, 16, trace_id >> 64, trace_id & _UINT64, 0x12, 8, span_id)


def _span(flat: Sequence[Any]) -> bytes:
    name, trace_id, span_id, _trace_flags, parent, kind, start, end, attributes, events, links, code, text, _ = flat
    out = [_ids(trace_id, span_id)]
    if parent is not None:
        out.append(_PARENT.pack(0x22, 8, parent[1]))
    if name:
        out.append(_field(b"\x2a", name.encode()))
    out.append(_KINDS[kind])
    if start and end:
        out.append(_TIMES.pack(0x39, start, 0x41, end))
    elif start or end:
        out.append(_TIME.pack(0x39, start) if start else _TIME.pack(0x41, end))
    if attributes:
        _put_attributes(out, b"\x4a", attributes)
    for event in events:
        out.append(_field(b"\x5a", _event(*event)))
    for link in links:
        out.append(_field(b"\x6a", _link(*link)))
    out.append(_field(b"\x7a", _status(code, text)))
    out.append(_SPAN_FLAGS[parent is not None and bool(parent[2])])
    return b"".join(out)


def _event(name: str, timestamp: int | None, attributes: Mapping[str, Any]) -> bytes:
    timestamp = time.time_ns() if timestamp is None else timestamp  # as `sdk.trace.Event` does
    out = [_TIME.pack(0x09, timestamp)] if timestamp else []
    if name:
        out.append(_field(b"\x12", name.encode()))
    if attributes:
        _put_attributes(out, b"\x1a", attributes)
    return b"".join(out)


def _link(trace_id: int, span_id: int, attributes: Mapping[str, Any]) -> bytes:
    out = [_ids(trace_id, span_id)]
    if attributes:
        _put_attributes(out, b"\x22", attributes)
    out.append(_LINK_FLAGS)
    return b"".join(out)


def _status(code: int, text: Any) -> bytes:
    # `trace.Status` keeps a description only with ERROR (and only a string).
    message = _field(b"\x12", text.encode()) if code == _ERROR and text and isinstance(text, str) else b""
    return message + (b"\x18" + _varint(code) if code else b"")


# -- the request ------------------------------------------------------------------------------------------------


def _scope(name: str | None, version: str | None) -> bytes:
    return (_field(b"\x0a", name.encode()) if name else b"") + (_field(b"\x12", version.encode()) if version else b"")


def encode_request(resource: Mapping[str, Any], spans: Sequence[Sequence[Any]]) -> bytes:
    """A serialized ExportTraceServiceRequest: one ResourceSpans, one ScopeSpans per (scope name, version) in
    order of first appearance, spans in their order within it. An empty batch is an empty request (b"")."""
    if not spans:
        return b""
    scopes: dict[tuple[Any, ...], list[bytes]] = {}
    for flat in spans:
        encoded = _span(flat)
        scope = tuple(flat[13])
        group = scopes.get(scope)
        if group is None:
            group = scopes[scope] = [_field(b"\x0a", _scope(*scope))]
        group.append(_field(b"\x12", encoded))
    resource_fields: list[bytes] = []
    _put_attributes(resource_fields, b"\x0a", resource)
    body = [_field(b"\x0a", b"".join(resource_fields))]
    body += [_field(b"\x12", b"".join(group)) for group in scopes.values()]
    return _field(b"\x0a", b"".join(body))
