"""Tracing: the gateway's one entry point to spans. MCP requests become SERVER spans (tracing_mcp), the
bridge's LLM exchanges CLIENT spans (tracing_llm); both carry OpenInference and OTel GenAI/MCP attributes.

The gateway owns its TracerProvider (tracing_setup) rather than the global one, so embedding the gateway, or
running several in one test process, never mixes spans. A `Tracing` that exports nowhere is disabled: every
method returns at once, handing out shared no-op spans, so the hot path pays one attribute check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Link, SpanKind

from ..version import __version__
from .lean_span import LeanMcpSpan, LeanSpans, SpanSink
from .mcp_span import NOOP_MCP_SPAN, McpSpan, NoopMcpSpan
from .openinference import Recording
from .tracing_context import HTTP_PARENT, Propagation
from .tracing_llm import NOOP_LLM_SPAN, LlmSpan, NoopLlmSpan, caller_attributes, llm_span_name
from .tracing_mcp import request_attributes, span_name
from .tracing_setup import build_provider

__all__ = ["LlmSpan", "McpSpan", "NoopLlmSpan", "NoopMcpSpan", "Tracing", "TracingSettings"]

# Goose sends its session id in `_meta` under the same name as its HTTP header, matched case-insensitively
# (block/goose crates/goose/src/session_context.rs SESSION_ID_HEADER, agents/mcp_client.rs); older releases used
# "goose-session-id".
GOOSE_META_SESSION_KEYS = ("agent-session-id", "goose-session-id")


@dataclass(frozen=True)
class TracingSettings:
    """Where spans go. Unset fields fall back to the standard OTEL_* variables, as the SDK reads them:
    OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT/HEADERS/PROTOCOL, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER(_ARG), OTEL_SDK_DISABLED, OTEL_BSP_*, OTEL_PROPAGATORS."""

    exporter: str = "none"  # otlp-http | otlp-grpc | otlp (by OTEL_EXPORTER_OTLP_PROTOCOL) | console | none
    endpoint: str | None = None  # beats the env endpoint; an http URL without a path gets /v1/traces
    headers: Mapping[str, str] = field(default_factory=dict)  # beats OTEL_EXPORTER_OTLP_HEADERS when non-empty
    service_name: str | None = None  # None: OTEL_SERVICE_NAME, else "mcp-gateway"
    project_name: str | None = None  # resource attribute openinference.project.name (the Phoenix project)
    sample_ratio: float | None = None  # parent-based ratio; None: OTEL_TRACES_SAMPLER, else always on
    session_header: str = "agent-session-id"  # the HTTP header (and `_meta` key) holding session.id


class Tracing:
    def __init__(
        self,
        settings: TracingSettings,
        *,
        processors: Sequence[SpanProcessor] | None = None,
        make_global: bool = False,
    ) -> None:
        self.settings = settings
        self._provider, pipe = build_provider(settings, processors or ())
        self.enabled = self._provider is not None
        self._propagation = Propagation()
        # MCP spans skip the SDK's Span objects when the export process is their only consumer (lean_span.py).
        self._lean: LeanSpans | None = None
        self._pipe = pipe
        if self._provider is not None and pipe is not None and not processors:
            sink = SpanSink(pipe)
            self._lean = LeanSpans(sink, self._provider.sampler, self._propagation, ("mcp_gateway", __version__))
        header = settings.session_header.lower()
        self._session_header = header.encode("latin-1")
        self._session_keys = tuple(dict.fromkeys((header, *GOOSE_META_SESSION_KEYS)))
        self._tracer: trace.Tracer = trace.NoOpTracer()
        if self._provider is not None:
            self._tracer = self._provider.get_tracer("mcp_gateway", __version__)
            if make_global:
                trace.set_tracer_provider(self._provider)

    def start_export(self) -> None:
        """Starts the span export process (in the serving process: each worker has its own)."""
        if self._pipe is not None:
            self._pipe.start()

    # -- the request's context ----------------------------------------------------------------------------------

    def extract(self, headers: Mapping[bytes, bytes], meta: Mapping[str, Any] | None) -> Context:
        """The parent of the request's span: W3C context from `params._meta` (MCP's convention), else from the
        HTTP headers, else a new trace. When both carry one, the HTTP context becomes a link."""
        if not self.enabled:
            return _EMPTY
        return self._propagation.extract(headers, meta)

    def session_id(self, headers: Mapping[bytes, bytes], meta: Mapping[str, Any] | None) -> str | None:
        """session.id: the configured HTTP header, else Goose's `_meta` key (any case)."""
        if not self.enabled:
            return None
        if value := headers.get(self._session_header):
            return value.decode("latin-1")
        if not meta:
            return None
        for key in self._session_keys:
            if isinstance(value := meta.get(key), str) and value:
                return value
        for key, value in meta.items():  # Goose matches its key case-insensitively; so do we
            if isinstance(value, str) and value and key.lower() in self._session_keys:
                return value
        return None

    # -- MCP ------------------------------------------------------------------------------------------------------

    def start_mcp(
        self,
        method: str,
        *,
        target: str | None,
        parent: Context,
        request_id: Any,
        session_id: str | None,
        protocol_version: str | None,
        transport: str,
        tenant: str,
        subject: str,
        upstream: str | None,
        tool: dict[str, Any] | None = None,
        arguments: Any = None,
        recording: Recording,
        mcp_session_id: str | None = None,
        start_time_ns: int | None = None,
    ) -> McpSpan | LeanMcpSpan | NoopMcpSpan:
        """The SERVER span of one MCP request. `target` is the tool or prompt name, or the resource URI;
        `session_id` the agent's session (session.id), `mcp_session_id` the transport's (Mcp-Session-Id)."""
        if not self.enabled:
            return NOOP_MCP_SPAN

        def attributes() -> dict[str, Any]:
            return request_attributes(
                method,
                target,
                request_id=request_id,
                mcp_session_id=mcp_session_id,
                protocol_version=protocol_version,
                transport=transport,
                tenant=tenant,
                subject=subject,
                session_id=session_id,
                upstream=upstream,
                tool=tool,
                arguments=arguments,
                recording=recording,
            )

        http_parent = otel_context.get_value(HTTP_PARENT, parent)
        lean = self._lean
        if lean is not None:
            name = span_name(method, target)
            lean_links = (http_parent,) if http_parent is not None else ()
            context, parent_span, sampled = lean.start(name, parent)
            return LeanMcpSpan(
                lean,
                name,
                method,
                context,
                parent_span,
                parent,
                lean_links,
                start_time_ns or time.time_ns(),
                recording,
                attributes() if sampled else None,
            )
        links = (Link(http_parent),) if http_parent is not None else None
        span = self._tracer.start_span(
            span_name(method, target), context=parent, kind=SpanKind.SERVER, links=links, start_time=start_time_ns
        )
        # A span the sampler dropped costs no attribute work.
        recorded = attributes() if span.is_recording() else None
        return McpSpan(span, method, parent, recording, self._propagation, recorded)

    # -- LLM ------------------------------------------------------------------------------------------------------

    def start_llm(self, exchange: Any, parent: Context, *, start_time_ns: int | None = None) -> LlmSpan | NoopLlmSpan:
        """The CLIENT span of one bridge exchange (llm_bridge.exchange.Exchange), started now (at admission) so
        `headers()` can carry its context to the backend; `finish(exchange, recording)` ends it. The start is
        the exchange's own (`exchange.started`) unless given."""
        if not self.enabled:
            return NOOP_LLM_SPAN
        start_ns = start_time_ns if start_time_ns is not None else int(exchange.started * 1e9)
        session_id = self.session_id(exchange.headers, None)
        span = self._tracer.start_span(
            llm_span_name(exchange),
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=caller_attributes(exchange, session_id),
            start_time=start_ns,
        )
        return LlmSpan(span, parent, self._propagation, start_ns)

    def record_llm(
        self, *, exchange: Any, recording: Recording, start_time_ns: int, end_time_ns: int, parent: Context
    ) -> None:
        """The same span after the fact, with explicit times: for exchanges whose backend request needed no
        trace context (or when the live span was not started)."""
        if not self.enabled:
            return
        self.start_llm(exchange, parent, start_time_ns=start_time_ns).finish(
            exchange, recording, end_time_ns=end_time_ns
        )

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is queued now (tests; before a planned stop)."""
        if self._lean is not None:
            self._lean.sink.flush()
        return self._provider.force_flush(timeout_millis) if self._provider is not None else True

    def shutdown(self) -> None:
        """Flush and stop the exporters; spans started afterwards are dropped."""
        if self._lean is not None:
            self._lean.sink.shutdown()  # first: its spans go out through the provider's export process
        if self._provider is not None:
            self._provider.shutdown()


_EMPTY = Context()
