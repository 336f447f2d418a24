"""Trace context in and out: W3C `traceparent`/`tracestate`/`baggage` read from the client's HTTP headers or
its `params._meta`, and written into what the gateway sends upstream.

MCP's convention (docs/gen-ai/mcp.md, SEP-414) puts the context in `params._meta` under the unprefixed W3C keys,
and the receiver SHOULD parent on it and link the ambient (HTTP) context. So `_meta` wins and a different
HTTP context is kept as a link. The propagator is the API's global one: OTEL_PROPAGATORS applies.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import SpanContext

# The HTTP context a `_meta` context displaced: start_mcp links it.
HTTP_PARENT = otel_context.create_key("mcp_gateway.http_parent")


class _HeaderGetter(Getter[Mapping[bytes, bytes]]):
    """ASGI headers: lower-case byte names, latin-1 values."""

    def get(self, carrier: Mapping[bytes, bytes], key: str) -> list[str] | None:
        value = carrier.get(key.encode("latin-1"))
        return None if value is None else [value.decode("latin-1")]

    def keys(self, carrier: Mapping[bytes, bytes]) -> list[str]:
        return [key.decode("latin-1") for key in carrier]


class _MetaGetter(Getter[Mapping[str, Any]]):
    """`params._meta`: only string values are trace context; anything else is someone else's key."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_HEADERS = _HeaderGetter()
_META = _MetaGetter()


class Propagation:
    """The global propagator with its field names computed once (a composite builds the set on every call)."""

    __slots__ = ("_header_fields", "fields", "propagator")

    def __init__(self, propagator: TextMapPropagator | None = None) -> None:
        self.propagator = propagator or propagate.get_global_textmap()
        self.fields = frozenset(self.propagator.fields)
        self._header_fields = frozenset(name.encode("latin-1") for name in self.fields)

    def extract(self, headers: Mapping[bytes, bytes], meta: Mapping[str, Any] | None) -> Context:
        """The parent for a request: `_meta`'s context if it has a valid one, else the headers', else a new
        root. Carriers without any propagator field are skipped without calling the propagator."""
        from_headers: Context | None = None
        if headers and not self._header_fields.isdisjoint(headers):  # in C: no generator per request
            from_headers = self.propagator.extract(headers, getter=_HEADERS)
        if meta and not self.fields.isdisjoint(meta):
            from_meta = self.propagator.extract(meta, getter=_META)
            meta_span = remote_span_context(from_meta)
            if meta_span is not None:
                http_span = remote_span_context(from_headers) if from_headers is not None else None
                if http_span is not None and http_span.span_id != meta_span.span_id:
                    from_meta = otel_context.set_value(HTTP_PARENT, http_span, from_meta)
                return from_meta
        return from_headers if from_headers is not None else Context()

    def inject(self, carrier: MutableMapping[str, Any], context: Context) -> None:
        self.propagator.inject(carrier, context=context)


def remote_span_context(ctx: Context) -> SpanContext | None:
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None
