"""Telemetry: what every call leaves behind — its span, the MCP duration metrics and its access-log line —
recorded in one place, whatever front it came from and however it ended (answered upstream, refused by a
step, answered by the gateway itself, failed, cancelled).

The span starts when the call arrives but is built lazily: the first time a later step needs its context
(to send it upstream, or to a sampling completion) routing has found the target, so the span is created
with it; a call the gateway answers itself gets its span when it ends, with the same start time.
Protocol plumbing (lists, discover, initialize, ping) is not traced unless `telemetry.tracing.plumbing`
is on, so it does not fill an agent's session in Phoenix. Metric labels come from the catalog and the
known method set only: a client's spelling of a name never becomes a series.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ...calls import Result
from ...jsonrpc import INTERNAL_ERROR, REQUEST_CANCELLED, McpError
from ...telemetry.access_log import AccessLog, OtlpAccessLog, entry_for
from ...telemetry.hub import Telemetry
from ...telemetry.tracing_mcp import mcp_error_type
from ..chain import Next
from ..exchange import Exchange

log = logging.getLogger("mcp_gateway.pipeline")

_NAME_LIMIT = 128  # a client's spelling of a target, cut to this for a span or log line


class TelemetryStep:
    name = "telemetry"

    def __init__(
        self,
        telemetry: Telemetry,
        access_log: AccessLog | OtlpAccessLog | None,
        upstream_protocol: Callable[[str | None], str | None],
        *,
        plumbing_spans: bool,
    ) -> None:
        self._telemetry = telemetry
        self._tracing = telemetry.tracing.enabled
        self._metrics = telemetry.metrics
        self._access_log = access_log
        self._upstream_protocol = upstream_protocol
        self._plumbing_spans = plumbing_spans

    async def __call__(self, exchange: Exchange, next: Next) -> Result:
        started = time.perf_counter()
        span: _LazySpan | None = None
        if self._tracing and (self._plumbing_spans or not exchange.method.plumbing):
            span = exchange.trace = _LazySpan(self._telemetry, exchange, time.time_ns())
        try:
            result = await next(exchange)
        except asyncio.CancelledError:
            self._record(exchange, Result.failed(McpError(REQUEST_CANCELLED, "Request cancelled")), started, span)
            raise
        except Exception:
            log.exception("unhandled error serving %s", exchange.call.method)
            result = Result.failed(McpError(INTERNAL_ERROR, "Internal error"))
        self._record(exchange, result, started, span)
        return result

    def _record(self, exchange: Exchange, result: Result, started: float, span: _LazySpan | None) -> None:
        try:
            self._write(exchange, result, started, span)
        except Exception:  # what a call leaves behind must never fail the call (e.g. an answer nested too deep)
            log.warning("could not record %s", exchange.call.method, exc_info=True)

    def _write(self, exchange: Exchange, result: Result, started: float, span: _LazySpan | None) -> None:
        result.duration = time.perf_counter() - started
        if span is not None:
            result.trace_id = span.finish(result)
        error = result.error
        code = error.code if error is not None else None
        call = exchange.call
        target = exchange.target
        if self._metrics is not None:
            method = exchange.method.label or exchange.method.name
            label = target.name if target is not None and target.in_catalog else None
            error_type = mcp_error_type(code, result.tool_error)
            self._metrics.mcp_server(
                result.duration,
                method=method,
                target=label,
                error_type=error_type,
                protocol_version=call.client.protocol_version,
                transport=call.transport,
                tenant=call.principal.tenant,
                upstream=result.upstream,
            )
            if result.upstream_duration is not None and result.upstream is not None:
                self._metrics.mcp_client(
                    result.upstream_duration,
                    method=method,
                    target=label,
                    error_type=error_type,
                    protocol_version=self._upstream_protocol(result.upstream),
                    upstream=result.upstream,
                )
        if self._access_log is not None:
            self._access_log.record(
                entry_for(
                    method=call.method,
                    target=_target_name(exchange),
                    tenant=call.principal.tenant,
                    subject=call.principal.subject,
                    upstream=result.upstream,
                    protocol=call.client.protocol_version,
                    session=call.client.session_id,
                    error=code,
                    duration=result.duration,
                    trace_id=result.trace_id,
                )
            )


class _LazySpan:
    """The call's span, created the first time its context is asked for, or when the call ends.

    The exchange holds it (`exchange.trace`) and it holds the exchange until the span exists: it lets go
    then, so a call's objects are freed by reference counting as soon as it ends. A cycle here kept every
    traced call's exchange, stream and request cycle alive until the collector ran (~35 us a call).
    """

    __slots__ = ("_exchange", "_span", "_start_ns", "_telemetry")

    def __init__(self, telemetry: Telemetry, exchange: Exchange, start_ns: int) -> None:
        self._telemetry = telemetry
        self._exchange: Exchange | None = exchange
        self._start_ns = start_ns
        self._span: Any = None

    def _started(self) -> Any:
        span = self._span
        if span is None:
            exchange = self._exchange
            assert exchange is not None
            target = exchange.target
            call = exchange.call
            if target is not None and target.upstream is not None:
                arguments: Any = target.arguments
            else:  # answered by the gateway: what the client sent is what there is to show
                arguments = call.params.get("arguments")
            entry = target.entry if target is not None else None
            span = self._span = self._telemetry.start_call(
                call,
                target.upstream or "" if target is not None else "",
                _target_name(exchange),
                entry.definition if entry is not None and target is not None and target.kind == "tools" else None,
                arguments,
                self._start_ns,
            )
            self._exchange = None
        return span

    def headers(self) -> dict[str, str]:
        return self._started().headers()

    def meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        return self._started().meta(meta)

    def finish(self, result: Result) -> str | None:
        span = self._started()
        error = result.error
        if error is not None:
            span.finish(error_code=error.code, error_message=error.message)
        else:
            span.finish(result=result.payload, is_error=result.tool_error)
        return span.trace_id


def _target_name(exchange: Exchange) -> str | None:
    """What the call was about: the routed name, else the name the client sent (cut short)."""
    target = exchange.target
    if target is not None and target.name is not None:
        return target.name if target.in_catalog else target.name[:_NAME_LIMIT]
    params = exchange.call.params
    name = params.get("name") if exchange.call.method in ("tools/call", "prompts/get") else params.get("uri")
    return name[:_NAME_LIMIT] if isinstance(name, str) else None
