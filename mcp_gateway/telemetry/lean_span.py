"""MCP spans without SDK `Span` objects, for the hot path.

The SDK spends ~100 us of the event loop per traced `tools/call` (span objects, attribute validation per key,
processor hand-off, flattening for export). When the only consumer is the export process, an MCP span is built
here directly as the flat tuple the export process reads (`export_process.flatten`'s format): ids, the
sampler's decision, the attributes the SDK path computes, and one append to a queue a thread drains in
batches. LLM spans and spans for test processors keep the SDK path; both paths share the attribute builders,
so they record the same thing.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from .export_process import PipeSpanExporter
from .openinference import Recording
from .tracing_context import Propagation
from .tracing_mcp import meta_with, record_outcome

log = logging.getLogger(__name__)

_SERVER = SpanKind.SERVER.value
_UNSET, _ERROR = StatusCode.UNSET.value, StatusCode.ERROR.value
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_DEFAULT_SAMPLER = (
    "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,"
    "localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"
)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


class SpanSink:
    """Finished flat spans, sent to the export process in batches by one thread (never the event loop)."""

    def __init__(
        self, exporter: PipeSpanExporter, *, batch: int = 512, delay: float = 1.0, limit: int = 20_000
    ) -> None:
        self._exporter = exporter
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._batch = batch
        self._delay = delay
        self._limit = limit
        self._wake = threading.Event()
        self._stopped = False
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="mcp-span-sink", daemon=True)
        self._thread.start()

    def add(self, flat: tuple[Any, ...]) -> None:
        queue = self._queue
        if len(queue) >= self._limit:  # the exporter cannot keep up: drop rather than grow without bound
            self._dropped += 1
            return
        queue.append(flat)
        if len(queue) == self._batch:  # once per batch: a thread that is behind is woken already
            self._wake.set()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(len(queue), self._batch))]
            self._exporter.send(batch)
        if self._dropped:
            log.warning("%d span(s) dropped: the span exporter is behind", self._dropped)
            self._dropped = 0

    def flush(self) -> None:
        self._drain()

    def shutdown(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=10)


class LeanSpans:
    """Starts lean MCP spans: the SDK's sampler decides, the sink carries them away."""

    def __init__(self, sink: SpanSink, sampler: Sampler, propagation: Propagation, scope: tuple[str, str]) -> None:
        self.sink = sink
        self._sampler = sampler
        self._propagation = propagation
        self._scope = scope
        self._random = random.getrandbits
        # The default global propagators (W3C trace context and baggage): headers can be written directly.
        self.w3c_only = propagation.fields == frozenset({"traceparent", "tracestate", "baggage"})
        # The SDK's default sampler (no ratio configured) decides from the parent's flag alone.
        self._follow_parent = sampler.get_description() == _DEFAULT_SAMPLER

    def start(self, name: str, parent: Context) -> tuple[SpanContext, SpanContext | None, bool]:
        """(this span's context, the parent span's context, sampled?)."""
        parent_span = trace.get_current_span(parent).get_span_context()
        parent_span = parent_span if parent_span.is_valid else None
        trace_id = parent_span.trace_id if parent_span is not None else self._random(128) or 1
        if self._follow_parent:
            sampled = parent_span.trace_flags.sampled if parent_span is not None else True
        else:
            decision = self._sampler.should_sample(parent, trace_id, name, trace.SpanKind.SERVER)
            sampled = decision.decision is Decision.RECORD_AND_SAMPLE
        state = parent_span.trace_state if parent_span is not None else None
        context = SpanContext(
            trace_id,
            self._random(64) or 1,
            is_remote=False,
            trace_flags=_SAMPLED if sampled else _NOT_SAMPLED,
            trace_state=state,
        )
        return context, parent_span, sampled

    @property
    def propagation(self) -> Propagation:
        return self._propagation

    @property
    def scope(self) -> tuple[str, str]:
        return self._scope


class LeanMcpSpan:
    """The same contract as `tracing_mcp.McpSpan`, recorded as one flat tuple when it finishes."""

    __slots__ = (
        "_attributes",
        "_carrier",
        "_context",
        "_done",
        "_links",
        "_method",
        "_name",
        "_owner",
        "_parent",
        "_parent_context",
        "_propagated",
        "_recording",
        "_start",
    )

    def __init__(
        self,
        owner: LeanSpans,
        name: str,
        method: str,
        context: SpanContext,
        parent: SpanContext | None,
        parent_context: Context,
        links: tuple[SpanContext, ...],
        start_ns: int,
        recording: Recording,
        attributes: dict[str, Any] | None,
    ) -> None:
        self._owner = owner
        self._name = name
        self._method = method
        self._context = context
        self._parent = parent
        self._parent_context = parent_context
        self._propagated: Context | None = None  # built when asked for (LLM child spans, other propagators)
        self._links = links
        self._start = start_ns
        self._recording = recording
        self._attributes = attributes  # None: not sampled (nothing recorded, context still propagated)
        self._carrier: dict[str, str] | None = None
        self._done = False

    @property
    def trace_id(self) -> str:
        return format(self._context.trace_id, "032x")

    def context(self) -> Context:
        if self._propagated is None:
            self._propagated = trace.set_span_in_context(NonRecordingSpan(self._context), self._parent_context)
        return self._propagated

    def headers(self) -> dict[str, str]:
        if self._carrier is None:
            carrier: dict[str, str] = {}
            if self._owner.w3c_only and not baggage.get_all(self._parent_context):
                # The default propagators with no baggage write exactly this (and the tracestate), ~10x cheaper.
                context = self._context
                carrier["traceparent"] = (
                    f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
                )
                if context.trace_state:
                    carrier["tracestate"] = context.trace_state.to_header()
            else:
                self._owner.propagation.inject(carrier, self.context())
            self._carrier = carrier
        return dict(self._carrier)

    def meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        return meta_with(meta, self._owner.propagation.fields, self.headers())

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
        attributes = self._attributes
        if attributes is None:
            return
        failed, description = record_outcome(
            attributes,
            self._method,
            result,
            error_code=error_code,
            error_message=error_message,
            is_error=is_error,
            recording=self._recording,
        )
        context, parent = self._context, self._parent
        self._owner.sink.add(
            (
                self._name,
                context.trace_id,
                context.span_id,
                int(context.trace_flags),
                (parent.trace_id, parent.span_id, parent.is_remote) if parent is not None else None,
                _SERVER,
                self._start,
                time.time_ns(),
                attributes,
                [],
                [(link.trace_id, link.span_id, {}) for link in self._links],
                _ERROR if failed else _UNSET,
                description,
                self._owner.scope,
            )
        )
