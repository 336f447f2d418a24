"""The live span of one MCP request on the OpenTelemetry SDK (used with the SDK's own span processors, e.g.
tests' in-memory exporter), and the no-op span a disabled `Tracing` hands out. The serving path's span,
which skips the SDK's objects, is `lean_span.LeanMcpSpan`; all three record the same attributes
(`tracing_mcp.py`)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from .openinference import Recording
from .tracing_context import Propagation
from .tracing_mcp import meta_with, record_outcome


class McpSpan:
    """The live span of one MCP request: what to forward upstream, and how it ended."""

    __slots__ = ("_attributes", "_carrier", "_done", "_method", "_parent", "_propagation", "_recording", "span")

    def __init__(
        self,
        span: Span,
        method: str,
        parent: Context,
        recording: Recording,
        propagation: Propagation,
        attributes: dict[str, Any] | None,
    ) -> None:
        self.span = span
        self._method = method
        self._parent = parent
        self._recording = recording
        self._propagation = propagation
        # The request's attributes wait for the result: the SDK validates and copies attributes per call and
        # per key, so one set_attributes at the end is the cheapest way to record them (None: not sampled).
        self._attributes = attributes
        self._done = False
        self._carrier: dict[str, str] | None = None

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def context(self) -> Context:
        """The parent's context with this span current: for child spans (an upstream client call)."""
        return trace.set_span_in_context(self.span, self._parent)

    def headers(self) -> dict[str, str]:
        """`traceparent` (and `tracestate`, `baggage`) for the upstream HTTP request."""
        if self._carrier is None:  # injected once: headers and _meta carry the same context
            carrier: dict[str, str] = {}
            self._propagation.inject(carrier, self.context())
            self._carrier = carrier
        return dict(self._carrier)

    def meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        return meta_with(meta, self._propagation.fields, self.headers())

    def finish(
        self,
        *,
        result: Any = None,
        error_code: int | None = None,
        error_message: str | None = None,
        is_error: bool = False,
    ) -> None:
        if self._done:
            return
        self._done = True
        span = self.span
        attributes = self._attributes
        if attributes is not None:
            failed, description = record_outcome(
                attributes,
                self._method,
                result,
                error_code=error_code,
                error_message=error_message,
                is_error=is_error,
                recording=self._recording,
            )
            span.set_attributes(attributes)
            if failed:
                span.set_status(Status(StatusCode.ERROR, description))
        span.end()


class NoopMcpSpan:
    """What a disabled `Tracing` hands out: every method does nothing, cheaply."""

    __slots__ = ()
    trace_id = None
    span = trace.INVALID_SPAN

    def context(self) -> Context:
        return Context()

    def headers(self) -> dict[str, str]:
        return {}

    def meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        return dict(meta) if meta else {}

    def finish(
        self,
        *,
        result: Any = None,
        error_code: int | None = None,
        error_message: str | None = None,
        is_error: bool = False,
    ) -> None:
        return None


NOOP_MCP_SPAN = NoopMcpSpan()
