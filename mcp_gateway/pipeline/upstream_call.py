"""The exchange with an upstream, at the end of the pipeline: one request on the upstream's pooled session,
carrying the call's trace context, relaying what the upstream sends meanwhile (progress, logs, requests to
the client), and bridging the eras where the client cannot be asked directly (the MRTR bridge)."""

from __future__ import annotations

import time
from typing import Any

from ..calls import Call, Result
from ..jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, McpError
from ..upstream.pool import UpstreamPool
from .exchange import Exchange
from .mrtr import InputBridge
from .relay import CallRelay, Sampler

# Where MRTR applies (SEP-2322), so where a handshake-era upstream's pushes must be bridged.
_MRTR_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})


class UpstreamCaller:
    def __init__(self, pool: UpstreamPool, bridge: InputBridge, sampler: Sampler | None) -> None:
        self._pool = pool
        self._bridge = bridge
        self._sampler = sampler

    def resumes(self, call: Call) -> bool:
        """Does this call resume work the gateway holds (a retry carrying the gateway's requestState)?"""
        return self._bridge.owns(call.params)

    async def send(self, exchange: Exchange, params: dict[str, Any], headers: dict[str, str] | None = None) -> Result:
        """Send `params` to the target's upstream; the Result says who answered and how long it took."""
        call = exchange.call
        target = exchange.target
        assert target is not None and target.upstream is not None
        upstream = target.upstream
        handle = self._pool.get(upstream)
        if handle is None:
            return Result.failed(McpError(METHOD_NOT_FOUND, f"unknown upstream '{upstream}'"))
        trace = exchange.trace
        trace_headers: dict[str, str] | None = None
        if trace is not None:
            trace_headers = trace.headers()
            params = {**params, "_meta": trace.meta(params.get("_meta"))}
            headers = {**headers, **trace_headers} if headers else trace_headers
        session = handle.session
        started = time.perf_counter()
        continues = None
        try:
            if call.method in _MRTR_METHODS and (
                self._bridge.owns(params)
                or (call.client.modern and session is not None and not session.modern and _can_be_asked(call))
            ):
                # A modern client and a handshake-era upstream: pushes become input_required rounds.
                first = {k: v for k, v in params.items() if k not in ("inputResponses", "requestState")}
                if "requestState" in params and not self._bridge.owns(params):
                    raise McpError(INVALID_PARAMS, "requestState is invalid: it was not issued by this gateway")
                payload, continues = await self._bridge.run(
                    call,
                    lambda relay: handle.request(
                        call.method, first, relay=relay, headers=headers, principal=call.principal
                    ),
                    call.principal.binding,
                    trace_headers,
                )
            else:
                relay = CallRelay(call, self._sampler, trace_headers)
                payload = await handle.request(
                    call.method, params, relay=relay, headers=headers, principal=call.principal
                )
        except McpError as exc:
            return Result(error=exc, upstream=upstream, upstream_duration=time.perf_counter() - started)
        return Result(payload, upstream=upstream, upstream_duration=time.perf_counter() - started, continues=continues)

    def protocol_of(self, upstream: str | None) -> str | None:
        """The era the gateway speaks with this upstream (for metrics)."""
        handle = self._pool.get(upstream) if upstream is not None else None
        return handle.health.protocol_version if handle is not None else None


def _can_be_asked(call: Call) -> bool:
    """Did the client declare anything an upstream could ask it? Without it, pushes are refused inline."""
    capabilities = call.client.capabilities
    return "sampling" in capabilities or "elicitation" in capabilities or "roots" in capabilities
