"""The gateway's metrics: OTel GenAI and MCP semantic-convention histograms, recorded once per call.

Each record goes to prometheus_client (for GET /metrics, summed over worker processes; see `prometheus.py`) and/or
to OTel instruments from a MeterProvider (which the gateway exports by OTLP). Names, units, advised buckets and
attributes follow the semantic conventions (OTel docs/gen-ai/mcp.md and gen-ai-metrics.md); the Prometheus names
are the ones the OTel Prometheus exporter would produce, with label keys spelled '.' -> '_'. The gateway's own
`tenant` and `upstream` / `backend` labels are added; nothing with unbounded values (ids, URIs) is ever a label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Histogram as OtelHistogram
from opentelemetry.metrics import Meter, MeterProvider
from prometheus_client import Histogram as PrometheusHistogram

from ..version import __version__
from .prometheus import CONTENT_TYPE, PrometheusExposition

log = logging.getLogger("mcp_gateway")

# Advised ExplicitBucketBoundaries, exactly as the conventions list them.
MCP_DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)

# gen_ai.provider.name spellings for the gateway's provider kinds; other values pass through unchanged.
_PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
}

_TOOLS_CALL = "tools/call"
_PROMPTS_GET = "prompts/get"
_EXECUTE_TOOL = "execute_tool"

# Series per instrument in one process before new label sets fold into one `_OTHER` series. Tool names and
# models come from callers, so an unknown-tool or unknown-model error must not mint a series per request; the
# OTel SDK's own cardinality limit per stream is also 2000.
_MAX_SERIES = 2000
_OVERFLOW = "_OTHER"

_GEN_AI = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model")
# The attributes both MCP durations share, in the order Metrics.mcp_server/mcp_client pass them.
_MCP = (
    "mcp.method.name",
    "gen_ai.operation.name",
    "gen_ai.tool.name",
    "gen_ai.prompt.name",
    "error.type",
    "mcp.protocol.version",
)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    name: str  # the OTel instrument name
    unit: str
    prometheus_name: str  # what the OTel Prometheus exporter would call it
    description: str
    buckets: tuple[float, ...] | tuple[int, ...]
    attributes: tuple[str, ...]  # attribute keys, in the order record() passes values

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(key.replace(".", "_") for key in self.attributes)


MCP_SERVER_OPERATION_DURATION = InstrumentSpec(
    "mcp.server.operation.duration",
    "s",
    "mcp_server_operation_duration_seconds",
    "Duration of MCP requests the gateway served, from receiving until the result was sent.",
    MCP_DURATION_BUCKETS,
    (*_MCP, "network.transport", "tenant", "upstream"),
)
MCP_CLIENT_OPERATION_DURATION = InstrumentSpec(
    "mcp.client.operation.duration",
    "s",
    "mcp_client_operation_duration_seconds",
    "Duration of MCP requests the gateway sent upstream, from sending until the response.",
    MCP_DURATION_BUCKETS,
    (*_MCP, "upstream"),
)
GEN_AI_CLIENT_OPERATION_DURATION = InstrumentSpec(
    "gen_ai.client.operation.duration",
    "s",
    "gen_ai_client_operation_duration_seconds",
    "Duration of GenAI operations the gateway sent to a provider.",
    GEN_AI_DURATION_BUCKETS,
    (*_GEN_AI, "error.type", "tenant", "backend"),
)
GEN_AI_SERVER_REQUEST_DURATION = InstrumentSpec(
    "gen_ai.server.request.duration",
    "s",
    "gen_ai_server_request_duration_seconds",
    "Duration of GenAI requests the gateway served to its callers.",
    GEN_AI_DURATION_BUCKETS,
    (*_GEN_AI, "error.type", "tenant", "backend"),
)
GEN_AI_CLIENT_TOKEN_USAGE = InstrumentSpec(
    "gen_ai.client.token.usage",
    "{token}",
    "gen_ai_client_token_usage",
    "Input and output tokens per GenAI operation, as the provider reported them.",
    TOKEN_BUCKETS,
    (*_GEN_AI, "gen_ai.token.type", "tenant", "backend"),
)
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = InstrumentSpec(
    "gen_ai.server.time_to_first_token",
    "s",
    "gen_ai_server_time_to_first_token_seconds",
    "Time from the request until the first output token, for successful requests.",
    TTFT_BUCKETS,
    (*_GEN_AI, "tenant", "backend"),
)
GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = InstrumentSpec(
    "gen_ai.server.time_per_output_token",
    "s",
    "gen_ai_server_time_per_output_token_seconds",
    "Time per output token after the first, for successful requests.",
    TPOT_BUCKETS,
    (*_GEN_AI, "tenant", "backend"),
)

INSTRUMENTS = (
    GEN_AI_CLIENT_TOKEN_USAGE,
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_SERVER_REQUEST_DURATION,
    GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
    GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
    MCP_SERVER_OPERATION_DURATION,
    MCP_CLIENT_OPERATION_DURATION,
)


def provider_name(kind: str | None) -> str | None:
    """The semconv `gen_ai.provider.name` spelling of a provider kind (`bedrock` -> `aws.bedrock`)."""
    if kind is None:
        return None
    return _PROVIDER_NAMES.get(kind, kind)


_Series = tuple[PrometheusHistogram | None, dict[str, str]]  # (labelled child, OTel attributes)


class _Histogram:
    """One instrument on both sides; each label set is resolved once, then a record is a dict lookup."""

    __slots__ = ("_exposition", "_otel", "_overflowed", "_prometheus", "_series", "_spec")

    def __init__(self, spec: InstrumentSpec, exposition: PrometheusExposition | None, meter: Meter | None) -> None:
        self._spec = spec
        self._exposition = exposition
        self._prometheus = (
            exposition.histogram(spec.prometheus_name, spec.description, spec.labels, spec.buckets)
            if exposition
            else None
        )
        self._otel: OtelHistogram | None = (
            meter.create_histogram(
                spec.name,
                unit=spec.unit,
                description=spec.description,
                explicit_bucket_boundaries_advisory=list(spec.buckets),
            )
            if meter
            else None
        )
        self._series: dict[tuple[str | None, ...], _Series] = {}
        self._overflowed = False

    def record(self, value: float, key: tuple[str | None, ...]) -> None:
        series = self._series.get(key) or self._add_series(key)
        child, attributes = series
        if child is not None:
            child.observe(value)
        if self._otel is not None:
            self._otel.record(value, attributes)

    def _add_series(self, key: tuple[str | None, ...]) -> _Series:
        if len(self._series) >= _MAX_SERIES:
            if not self._overflowed:
                self._overflowed = True
                log.warning("%s passed %d label sets; new ones fold into %s", self._spec.name, _MAX_SERIES, _OVERFLOW)
            key = (_OVERFLOW,) * len(key)
            if key in self._series:
                return self._series[key]
        child: PrometheusHistogram | None = None
        if self._prometheus is not None:
            assert self._exposition is not None
            self._exposition.check_value_class()
            child = self._prometheus.labels(*("" if value is None else value for value in key))
        # OTel omits an attribute it has no value for; Prometheus needs every label, and "" means absent.
        attributes = {name: value for name, value in zip(self._spec.attributes, key, strict=True) if value is not None}
        series = self._series[key] = (child, attributes)
        return series


class Metrics:
    """Records the gateway's MCP and LLM metrics; renders them for GET /metrics."""

    def __init__(self, *, prometheus: bool = True, meter_provider: MeterProvider | None = None) -> None:
        self._exposition = PrometheusExposition() if prometheus else None
        self._policy_reloads: Any = None
        self._policy_valid: Any = None
        meter = meter_provider.get_meter("mcp_gateway", __version__) if meter_provider is not None else None
        exposition = self._exposition

        def histogram(spec: InstrumentSpec) -> _Histogram:
            return _Histogram(spec, exposition, meter)

        self._mcp_server = histogram(MCP_SERVER_OPERATION_DURATION)
        self._mcp_client = histogram(MCP_CLIENT_OPERATION_DURATION)
        self._client_duration = histogram(GEN_AI_CLIENT_OPERATION_DURATION)
        self._server_duration = histogram(GEN_AI_SERVER_REQUEST_DURATION)
        self._token_usage = histogram(GEN_AI_CLIENT_TOKEN_USAGE)
        self._time_to_first_token = histogram(GEN_AI_SERVER_TIME_TO_FIRST_TOKEN)
        self._time_per_output_token = histogram(GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN)

    def mcp_server(
        self,
        duration: float,
        *,
        method: str,
        target: str | None,
        error_type: str | None,
        protocol_version: str | None,
        transport: str,
        tenant: str,
        upstream: str | None,
    ) -> None:
        """One MCP request the gateway served; `target` is the tool (tools/call) or prompt (prompts/get) name."""
        tool, prompt, operation = _targets(method, target)
        self._mcp_server.record(
            duration, (method, operation, tool, prompt, error_type, protocol_version, transport, tenant, upstream)
        )

    def mcp_client(
        self,
        duration: float,
        *,
        method: str,
        target: str | None,
        error_type: str | None,
        protocol_version: str | None,
        upstream: str,
    ) -> None:
        """One MCP request the gateway sent to an upstream server."""
        tool, prompt, operation = _targets(method, target)
        self._mcp_client.record(duration, (method, operation, tool, prompt, error_type, protocol_version, upstream))

    def llm(
        self,
        *,
        operation: str,
        provider: str | None,
        request_model: str | None,
        response_model: str | None,
        duration: float,
        error_type: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        time_to_first_token: float | None,
        time_per_output_token: float | None,
        tenant: str,
        backend: str | None,
    ) -> None:
        """One LLM call: the gateway is the provider's client and its caller's server, so both durations count."""
        base = (operation, provider_name(provider), request_model, response_model)
        outcome = (*base, error_type, tenant, backend)
        self._client_duration.record(duration, outcome)
        self._server_duration.record(duration, outcome)
        # Token usage, TTFT and TPOT carry no error.type; the token counts stand even for a failed call.
        if input_tokens is not None:
            self._token_usage.record(input_tokens, (*base, "input", tenant, backend))
        if output_tokens is not None:
            self._token_usage.record(output_tokens, (*base, "output", tenant, backend))
        if error_type is None:  # the conventions define TTFT and TPOT for successful responses only
            plain = (*base, tenant, backend)
            if time_to_first_token is not None:
                self._time_to_first_token.record(time_to_first_token, plain)
            if time_per_output_token is not None:
                self._time_per_output_token.record(time_per_output_token, plain)

    def policy_reload(self, ok: bool) -> None:
        """A policy load applied (ok) or rejected: `mcp_gateway_policy_reloads_total{result}` and
        `mcp_gateway_policy_valid` (0 while the files on disk are rejected and the previous policy serves)."""
        exposition = self._exposition
        if exposition is None:
            return
        if self._policy_reloads is None:
            self._policy_reloads = exposition.counter(
                "mcp_gateway_policy_reloads", "Policy loads, applied (ok) or rejected (error).", ["result"]
            )
            self._policy_valid = exposition.gauge(
                "mcp_gateway_policy_valid", "1 when the policy files on disk are in force, 0 when they were rejected."
            )
        self._policy_reloads.labels("ok" if ok else "error").inc()
        assert self._policy_valid is not None
        self._policy_valid.set(1 if ok else 0)

    def render(self) -> tuple[bytes, str]:
        """The GET /metrics body and content type: summed over every worker when there are several."""
        body = self._exposition.render() if self._exposition is not None else b""
        return body, CONTENT_TYPE


def _targets(method: str, target: str | None) -> tuple[str | None, str | None, str | None]:
    """(gen_ai.tool.name, gen_ai.prompt.name, gen_ai.operation.name); other targets (URIs...) are never labels."""
    if method == _TOOLS_CALL:
        return target, None, _EXECUTE_TOOL
    if method == _PROMPTS_GET:
        return None, target, None
    return None, None, None
