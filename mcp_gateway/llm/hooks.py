"""The LLM bridge's hooks, answered by the gateway: the same authentication, policy (kind `models`),
rate limits, budgets and access log as MCP traffic."""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Protocol

import orjson

from llm_bridge.errors import BridgeError
from llm_bridge.exchange import Exchange

from ..auth import AuthError, Principal
from ..jsonrpc import McpError
from ..limits import Limiter
from ..limits import budgets as budget_rules
from ..policy import CurrentPolicy
from ..telemetry.access_log import AccessLog, OtlpAccessLog
from ..telemetry.hub import Telemetry

log = logging.getLogger("mcp_gateway.llm")
audit = logging.getLogger("mcp_gateway.audit")

KIND = "models"


class Door(Protocol):
    """Who is calling, from a request's headers (the HTTP front's auth gate)."""

    async def principal(self, headers: dict[bytes, bytes]) -> Principal: ...

    def challenge_headers(self, error: AuthError) -> list[tuple[bytes, bytes]]: ...


class GatewayHooks:
    def __init__(
        self,
        policy: CurrentPolicy,
        limiter: Limiter,
        door: Door | None,
        anonymous: Principal,
        telemetry: Telemetry,
        access_log: AccessLog | OtlpAccessLog | None,
    ) -> None:
        self._policy = policy
        self._limiter = limiter
        self._door = door
        self._anonymous = anonymous
        self._telemetry = telemetry
        self._access_log = access_log

    async def authenticate(self, headers: dict[bytes, bytes], front: str) -> Principal:
        if self._door is None:
            return self._anonymous
        try:
            return await self._door.principal(headers)
        except AuthError as error:
            challenge = self._door.challenge_headers(error)
            raise BridgeError(error.status, error.description, headers=challenge) from None

    def may_use(self, caller: Principal, model: str) -> bool:
        engine = self._policy.engine
        return engine is None or engine.visible(caller, KIND, model, None)

    async def admit(self, exchange: Exchange) -> None:
        principal: Principal = exchange.caller
        model = exchange.original_model
        engine = self._policy.engine
        if engine is None:
            return
        # Conditions see the request's parameters as `args` (e.g. a cap on max_tokens), like tool arguments.
        decision = engine.decide(principal, KIND, model, None, exchange.request)
        if not decision.allowed:
            self._audit_denial(principal, model, decision.rule, decision.message)
            raise BridgeError(403, f"{decision.message} (policy rule '{decision.rule}')", code="policy_denied")
        limits = engine.limits_for(principal, KIND, model, None)
        if not limits:
            return
        try:
            exchange.state["admission"] = await self._limiter.admit(principal, KIND, model, None)
        except McpError as error:
            retry = (error.data or {}).get("retryAfterSeconds", 1) if isinstance(error.data, dict) else 1
            raise BridgeError(429, error.message, code="rate_limited", retry_after=retry) from None
        budgets = budget_rules.budgets_for(limits, principal, model)
        if not budgets:
            return
        exchange.state["budgets"] = budgets
        used_up = await budget_rules.exhausted(self._limiter.counters, budgets)
        if used_up is not None:
            await self._release(exchange)
            raise BridgeError(
                429,
                f"{used_up.describe()}; it resets in {math.ceil(used_up.resets_in)}s",
                code="budget_exceeded",
                retry_after=used_up.resets_in,
            )

    def outgoing_headers(self, exchange: Exchange) -> dict[str, str] | None:
        """The exchange's span starts here, just before a backend is asked, so its context goes along."""
        tracing = self._telemetry.tracing
        if not tracing.enabled:
            return None
        span = tracing.start_llm(exchange, tracing.extract(exchange.headers, None))
        exchange.state["span"] = span
        exchange.state["trace_id"] = span.trace_id
        return span.headers()

    async def spend(self, exchange: Exchange) -> None:
        budgets: list[budget_rules.Budget] | None = exchange.state.get("budgets")
        usage = exchange.usage
        if budgets and usage is not None:
            await budget_rules.spend(self._limiter.counters, budgets, usage.total_tokens, exchange.cost)

    async def finish(self, exchange: Exchange) -> None:
        await self._release(exchange)
        self._record(self._telemetry, exchange)
        if self._access_log is not None:
            self._access_log.record(_entry(exchange))

    @staticmethod
    def _record(telemetry: Telemetry, exchange: Exchange) -> None:
        principal: Principal | None = exchange.caller
        tenant = principal.tenant if principal is not None else ""
        if telemetry.tracing.enabled:
            recording = telemetry.recording(tenant)
            span = exchange.state.get("span")
            if span is not None:
                span.finish(exchange, recording)
            else:  # refused before any backend was asked: the span still tells why
                start = int(exchange.started * 1e9)
                end = start + int(exchange.duration * 1e9)
                tracing = telemetry.tracing
                parent = tracing.extract(exchange.headers, None)
                tracing.record_llm(
                    exchange=exchange, recording=recording, start_time_ns=start, end_time_ns=end, parent=parent
                )
        metrics = telemetry.metrics
        if metrics is not None:
            usage = exchange.usage
            metrics.llm(
                operation="embeddings" if exchange.operation == "embeddings" else "chat",
                provider=exchange.provider,
                request_model=exchange.request_model or exchange.original_model,
                response_model=exchange.response_model,
                duration=exchange.duration,
                error_type=exchange.error.type if exchange.error is not None else None,
                input_tokens=usage.input_tokens if usage is not None else None,
                output_tokens=usage.output_tokens if usage is not None else None,
                time_to_first_token=exchange.time_to_first_token,
                time_per_output_token=time_per_output_token(exchange),
                tenant=tenant,
                backend=exchange.backend,
            )

    async def _release(self, exchange: Exchange) -> None:
        admission = exchange.state.pop("admission", None)
        if admission is not None:
            await admission.release()

    @staticmethod
    def _audit_denial(principal: Principal, model: str, rule: str | None, reason: str) -> None:
        record = {
            "event": "deny",
            "tenant": principal.tenant,
            "subject": principal.subject,
            "kind": KIND,
            "target": model,
            "rule": rule,
            "reason": reason,
        }
        audit.info("%s", orjson.dumps(record).decode())


def time_per_output_token(exchange: Exchange) -> float | None:
    """Mean time between output tokens after the first (streams only): what users feel as the typing speed."""
    ttft = exchange.time_to_first_token
    usage = exchange.usage
    if ttft is None or usage is None or usage.output_tokens < 2 or exchange.ended is None:
        return None
    return max(0.0, exchange.duration - ttft) / (usage.output_tokens - 1)


def _entry(exchange: Exchange) -> dict[str, Any]:
    principal: Principal | None = exchange.caller
    usage = exchange.usage
    ttft = exchange.time_to_first_token
    tpot = time_per_output_token(exchange)
    return {
        "ts": round(exchange.started, 3),
        "pid": os.getpid(),
        "method": f"llm/{exchange.operation}",
        "target": exchange.original_model,
        "backend": exchange.backend,
        "provider": exchange.provider,
        "original_model": exchange.original_model,
        "request_model": exchange.request_model,
        "response_model": exchange.response_model,
        "tenant": principal.tenant if principal is not None else None,
        "subject": principal.subject if principal is not None else None,
        "stream": exchange.stream,
        "status": "ok" if exchange.error is None else "error",
        "error": exchange.status if exchange.error is not None else None,
        "attempts": [f"{backend}: {outcome}" for backend, outcome in exchange.attempts] or None,
        "input_tokens": usage.input_tokens if usage is not None else None,
        "output_tokens": usage.output_tokens if usage is not None else None,
        "cost_usd": round(exchange.cost, 8) if exchange.cost is not None else None,
        "duration_ms": round(exchange.duration * 1000, 3),
        "ttft_ms": round(ttft * 1000, 3) if ttft is not None else None,
        "inter_token_ms": round(tpot * 1000, 3) if tpot is not None else None,
        "trace_id": exchange.state.get("trace_id"),
    }
