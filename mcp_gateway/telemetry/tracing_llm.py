"""LLM and EMBEDDING spans for the bridge's exchanges: the OpenInference attributes of `openinference.py` plus
the OTel GenAI ones (`gen_ai.*`, gen-ai-spans.md: named `{operation} {model}`, kind CLIENT), the caller
(session.id, user.id, tenant) and the gateway's routing (backend, attempts).

The span is live: started when the exchange is admitted, so its context can travel in the backend request's
headers (`Hooks.outgoing_headers`), and ended when the exchange finishes, with the exchange's own times. Every
attribute that needs the answer is computed at the end, off the client's path (`Hooks.finish` runs after the
answer went out). `Tracing.record_llm` is the same span started and ended in one go.
"""

from __future__ import annotations

import logging
from typing import Any

from openinference.semconv.trace import OpenInferenceSpanKindValues, SpanAttributes
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GenAiOperationNameValues,
    GenAiProviderNameValues,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import Span, Status, StatusCode

from .openinference import Recording, embedding_attributes, llm_attributes, record_value
from .openinference_messages import dumps
from .tracing_context import Propagation
from .tracing_mcp import ATTEMPTS, BACKEND, BACKEND_REQUEST, BACKEND_RESPONSE, TENANT, metadata

log = logging.getLogger(__name__)

# The event the official OpenInference OpenAI instrumentation adds at a stream's first chunk.
FIRST_TOKEN_EVENT = "First Token Stream Event"

_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
_LLM = OpenInferenceSpanKindValues.LLM.value
_EMBEDDING = OpenInferenceSpanKindValues.EMBEDDING.value
_CHAT = GenAiOperationNameValues.CHAT.value
_EMBEDDINGS = GenAiOperationNameValues.EMBEDDINGS.value
# The bridge's operations are all chat-like except embeddings (`responses` and `messages` are chat APIs).
_OPERATIONS = {"chat": _CHAT, "messages": _CHAT, "responses": _CHAT, "embeddings": _EMBEDDINGS}
# Backend provider kinds (llm_bridge.config.Provider) -> (llm.provider, llm.system, gen_ai.provider.name).
# OpenInference (`llm.provider`) and OTel (`gen_ai.provider.name`) spell providers differently, hence the explicit
# table. llm.system is the API family; Bedrock's Converse API has no OpenInference value, so it is left out.
_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai": ("openai", "openai", GenAiProviderNameValues.OPENAI.value),
    "azure": ("azure", "openai", GenAiProviderNameValues.AZURE_AI_OPENAI.value),
    "anthropic": ("anthropic", "anthropic", GenAiProviderNameValues.ANTHROPIC.value),
    "bedrock": ("aws", "", GenAiProviderNameValues.AWS_BEDROCK.value),
    "gemini": ("google", "vertexai", GenAiProviderNameValues.GCP_GEMINI.value),
    "vertex": ("google", "vertexai", GenAiProviderNameValues.GCP_VERTEX_AI.value),
}


def operation_name(exchange: Any) -> str:
    return _OPERATIONS.get(exchange.operation, exchange.operation)


def llm_span_name(exchange: Any) -> str:
    return f"{operation_name(exchange)} {exchange.request_model or exchange.original_model}"


def caller_attributes(exchange: Any, session_id: str | None) -> dict[str, Any]:
    """Known at admission: the span kind, operation, requested model and who asks."""
    operation = operation_name(exchange)
    attributes: dict[str, Any] = {
        _KIND: _EMBEDDING if operation == _EMBEDDINGS else _LLM,
        GEN_AI_OPERATION_NAME: operation,
        GEN_AI_REQUEST_MODEL: exchange.request_model or exchange.original_model,
    }
    if session_id:
        attributes[SpanAttributes.SESSION_ID] = session_id
    caller = exchange.caller
    if subject := getattr(caller, "subject", None):
        attributes[SpanAttributes.USER_ID] = subject
    if tenant := getattr(caller, "tenant", None):
        attributes[TENANT] = tenant
    return attributes


def exchange_attributes(exchange: Any, recording: Recording) -> dict[str, Any]:
    """Known at the end: OpenInference request/response attributes, models, tokens, cost, routing, errors."""
    operation = operation_name(exchange)
    oi_provider, oi_system, genai_provider = _PROVIDERS.get(exchange.provider or "", (exchange.provider or "",) * 3)
    response = exchange.response if isinstance(exchange.response, dict) else None
    request = _chat_request(exchange)
    if operation == _EMBEDDINGS:
        attributes = embedding_attributes(
            request, response, system=oi_system, provider=oi_provider, recording=recording
        )
        if not attributes.get(SpanAttributes.EMBEDDING_MODEL_NAME):
            attributes[SpanAttributes.EMBEDDING_MODEL_NAME] = _served_model(exchange)
    else:
        attributes = llm_attributes(
            request, response, system=oi_system, provider=oi_provider, recording=recording, error=exchange.error
        )
        attributes[SpanAttributes.LLM_REQUEST_MODEL_NAME] = exchange.original_model
        if exchange.response_model:
            attributes[SpanAttributes.LLM_RESPONSE_MODEL_NAME] = exchange.response_model
        if not attributes.get(SpanAttributes.LLM_MODEL_NAME):
            attributes[SpanAttributes.LLM_MODEL_NAME] = _served_model(exchange)
        if response is not None and (reason := _finish_reason(response)) is not None:
            attributes[SpanAttributes.LLM_FINISH_REASON] = reason
        if exchange.front == "anthropic" and exchange.operation == "messages":
            _as_the_client_saw_it(attributes, exchange, request, response, recording)
    attributes[GEN_AI_OPERATION_NAME] = operation
    attributes[GEN_AI_REQUEST_MODEL] = exchange.request_model or exchange.original_model
    if genai_provider:
        attributes[GEN_AI_PROVIDER_NAME] = genai_provider
    if exchange.response_model:
        attributes[GEN_AI_RESPONSE_MODEL] = exchange.response_model
    if response is not None:
        _response_identity(attributes, response)
    if exchange.usage is not None:
        _usage(attributes, exchange.usage, embeddings=operation == _EMBEDDINGS)
    if exchange.cost is not None:
        attributes[SpanAttributes.LLM_COST_TOTAL] = exchange.cost
    if exchange.backend:
        attributes[BACKEND] = exchange.backend
    caller = exchange.caller
    attributes[SpanAttributes.METADATA] = metadata(tenant=getattr(caller, "tenant", None), backend=exchange.backend)
    if exchange.attempts:
        attributes[ATTEMPTS] = [f"{backend}:{outcome}" for backend, outcome in exchange.attempts]
    attributes[HTTP_RESPONSE_STATUS_CODE] = exchange.status
    if exchange.error is not None:
        attributes[ERROR_TYPE] = getattr(exchange.error, "type", None) or str(exchange.status)
    return attributes


def _served_model(exchange: Any) -> str:
    return exchange.response_model or exchange.request_model or exchange.original_model


def _chat_request(exchange: Any) -> dict[str, Any]:
    """The request in the canonical (Chat Completions) shape the OpenInference builders read: an Anthropic
    front-door request is translated as the bridge would translate it for a non-Anthropic backend."""
    request = exchange.request if isinstance(exchange.request, dict) else {}
    if exchange.front != "anthropic" or exchange.operation != "messages":
        return request
    from llm_bridge.translate.anthropic import chat_request

    try:
        return chat_request(request)
    except Exception:  # a malformed request still gets a span, with its raw body as input
        log.debug("could not translate an Anthropic request for its span", exc_info=True)
        return request


def _finish_reason(response: dict[str, Any]) -> str | None:
    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    reason = first.get("finish_reason") if isinstance(first, dict) else None
    return reason if isinstance(reason, str) else None


def _as_the_client_saw_it(
    attributes: dict[str, Any],
    exchange: Any,
    canonical_request: dict[str, Any],
    canonical_response: dict[str, Any] | None,
    recording: Recording,
) -> None:
    """An Anthropic client's span shows its own request and answer as input and output; when a backend of
    another kind served it, what that backend was sent and answered (the canonical translation) is kept in
    attributes of their own. The `llm.*_messages` stay the canonical ones, which Phoenix renders alike."""
    value, mime = SpanAttributes.INPUT_VALUE, SpanAttributes.INPUT_MIME_TYPE
    record_value(attributes, value, mime, exchange.request, recording.hide_inputs)
    if exchange.client_response is not None:
        value, mime = SpanAttributes.OUTPUT_VALUE, SpanAttributes.OUTPUT_MIME_TYPE
        record_value(attributes, value, mime, exchange.client_response, recording.hide_outputs)
    if exchange.provider == "anthropic":
        return  # passed through: the backend saw what the client sent
    if not recording.hide_inputs:
        attributes[BACKEND_REQUEST] = dumps(canonical_request)
    if canonical_response is not None and not recording.hide_outputs:
        attributes[BACKEND_RESPONSE] = dumps(canonical_response)


def _response_identity(attributes: dict[str, Any], response: dict[str, Any]) -> None:
    if isinstance(response_id := response.get("id"), str):
        attributes[GEN_AI_RESPONSE_ID] = response_id
    choices = response.get("choices")
    if isinstance(choices, list):
        reasons = [
            c["finish_reason"] for c in choices if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
        ]
        if reasons:
            attributes[GEN_AI_RESPONSE_FINISH_REASONS] = reasons


def _usage(attributes: dict[str, Any], usage: Any, *, embeddings: bool) -> None:
    """gen_ai.usage.* from the bridge's Usage; llm.token_count.* only where the response carried none (the
    builders read those from the response body, which a failed or usage-less answer lacks)."""
    attributes[GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
    if not embeddings:
        attributes[GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if usage.cached_tokens:
        attributes[GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_tokens
    if usage.cache_write_tokens:
        attributes[GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attributes[GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    attributes.setdefault(SpanAttributes.LLM_TOKEN_COUNT_PROMPT, usage.input_tokens)
    if not embeddings:
        attributes.setdefault(SpanAttributes.LLM_TOKEN_COUNT_COMPLETION, usage.output_tokens)
    attributes.setdefault(SpanAttributes.LLM_TOKEN_COUNT_TOTAL, usage.total_tokens)


class LlmSpan:
    """The live span of one bridge exchange."""

    __slots__ = ("_done", "_parent", "_propagation", "_start_ns", "span")

    def __init__(self, span: Span, parent: Context, propagation: Propagation, start_ns: int) -> None:
        self.span = span
        self._parent = parent
        self._propagation = propagation
        self._start_ns = start_ns
        self._done = False

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def context(self) -> Context:
        return trace.set_span_in_context(self.span, self._parent)

    def headers(self) -> dict[str, str]:
        """`traceparent` etc. for the backend request (what `Hooks.outgoing_headers` returns)."""
        carrier: dict[str, str] = {}
        self._propagation.inject(carrier, self.context())
        return carrier

    def finish(self, exchange: Any, recording: Recording, *, end_time_ns: int | None = None) -> None:
        """End the span with the exchange's outcome. Without `end_time_ns` the end is the exchange's start plus
        its (monotonic) duration, so a span recorded late still has the right length."""
        if self._done:
            return
        self._done = True
        span = self.span
        if end_time_ns is None:
            end_time_ns = self._start_ns + int(exchange.duration * 1e9)
        if span.is_recording():
            span.update_name(llm_span_name(exchange))
            span.set_attributes(exchange_attributes(exchange, recording))
            if (ttft := exchange.time_to_first_token) is not None:
                span.add_event(FIRST_TOKEN_EVENT, timestamp=self._start_ns + int(ttft * 1e9))
            if exchange.error is not None:
                span.record_exception(exchange.error, timestamp=end_time_ns)
                span.set_status(
                    Status(StatusCode.ERROR, getattr(exchange.error, "message", None) or str(exchange.error))
                )
            elif exchange.status >= 400:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {exchange.status}"))
        span.end(end_time=end_time_ns)


class NoopLlmSpan:
    __slots__ = ()
    trace_id = None
    span = trace.INVALID_SPAN

    def context(self) -> Context:
        return Context()

    def headers(self) -> dict[str, str]:
        return {}

    def finish(self, exchange: Any, recording: Recording, *, end_time_ns: int | None = None) -> None:
        return None


NOOP_LLM_SPAN = NoopLlmSpan()
