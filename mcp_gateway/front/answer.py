"""Runs one client request through the core and encodes its JSON-RPC answer: shared by every front."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..auth import AuthError
from ..core.call import Call
from ..core.gateway import Gateway
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, McpError, error_message, result_message
from ..telemetry.access_log import entry_for
from ..telemetry.tracing_mcp import mcp_error_type

log = logging.getLogger("mcp_gateway.front")

REQUEST_CANCELLED = -32800


async def answer(
    gateway: Gateway, call: Call, cancelled: set[Any], *, raise_auth: bool = True
) -> tuple[bytes, int | None]:
    """The encoded response to `call` and its error code (None on success). A request id in
    `cancelled` means the client cancelled it, which answers -32800 instead of propagating. A refusal
    for missing scopes propagates (`AuthError`: HTTP turns it into a 403 challenge), unless
    `raise_auth` is off (stdio), where it is a JSON-RPC error."""
    request_id = call.request_id
    access_log = gateway.access_log
    telemetry = gateway.telemetry
    metrics = telemetry.metrics if telemetry is not None else None
    started = time.perf_counter() if access_log is not None or metrics is not None else 0.0
    traced_here = telemetry is not None and telemetry.tracing.enabled
    start_ns = time.time_ns() if traced_here else 0
    error: int | None = None
    error_text: str | None = None
    result: Any = None
    try:
        result = await gateway.handle(call)
    except McpError as exc:
        error, error_text = exc.code, exc.message
        return error_message(request_id, exc), exc.code
    except AuthError as exc:
        error = exc.status
        if raise_auth:
            raise
        return error_message(request_id, McpError(INVALID_REQUEST, exc.description)), INVALID_REQUEST
    except asyncio.CancelledError:
        error = REQUEST_CANCELLED
        task = asyncio.current_task()
        if request_id not in cancelled or task is None:
            raise
        task.uncancel()
        return error_message(request_id, McpError(REQUEST_CANCELLED, "Request cancelled")), REQUEST_CANCELLED
    except Exception:
        error = INTERNAL_ERROR
        log.exception("unhandled error serving %s", call.method)
        return error_message(request_id, McpError(INTERNAL_ERROR, "Internal error")), INTERNAL_ERROR
    finally:
        cancelled.discard(request_id)
        if traced_here and call.trace_id is None:  # not forwarded upstream, so not traced yet
            telemetry.record_local(call, start_ns, error, error_text)  # type: ignore[union-attr]
        if metrics is not None:
            _measure(metrics, call, error, result, time.perf_counter() - started)
        if access_log is not None:
            access_log.record(
                entry_for(
                    method=call.method,
                    params=call.params,
                    tenant=call.principal.tenant,
                    subject=call.principal.subject,
                    upstream=call.upstream,
                    protocol=call.client.protocol_version,
                    session=call.client.session_id,
                    error=error,
                    started=started,
                    trace_id=call.trace_id,
                )
            )
    return result_message(request_id, result), None


def _measure(metrics: Any, call: Call, error: int | None, result: Any, duration: float) -> None:
    is_error = error is None and isinstance(result, dict) and result.get("isError") is True
    name = call.params.get("name")
    metrics.mcp_server(
        duration,
        method=call.method,
        target=name if isinstance(name, str) else None,
        error_type=mcp_error_type(error, is_error),
        protocol_version=call.client.protocol_version,
        transport=call.transport,
        tenant=call.principal.tenant,
        upstream=call.upstream,
    )
