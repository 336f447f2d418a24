"""`Telemetry`: what the gateway records about every request, behind one object (spans, metrics, the
per-tenant recording controls), built from `telemetry:` in gateway.yaml and the standard OTEL_* variables."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from ..calls import Call
from ..config.model import TelemetryConfig
from .lean_span import LeanMcpSpan
from .mcp_span import McpSpan, NoopMcpSpan
from .metrics import Metrics
from .openinference import Recording
from .tracing import Tracing, TracingSettings

log = logging.getLogger("mcp_gateway.telemetry")

_ENV_EXPORTERS = {"otlp": "otlp", "console": "console", "none": "none"}


class Telemetry:
    def __init__(self, tracing: Tracing, metrics: Metrics | None, policy: Callable[[], Any]) -> None:
        self.tracing = tracing
        self.metrics = metrics
        self._policy = policy  # the current PolicyEngine (swapped on reload), for per-tenant recording
        self._base = Recording.from_env(os.environ)
        self._recordings: dict[tuple[int, str], Recording] = {}
        self._meter_provider: Any = None

    @classmethod
    def from_config(
        cls,
        config: TelemetryConfig,
        policy: Callable[[], Any],
        *,
        prometheus: bool | None = None,
        span_processors: Sequence[SpanProcessor] = (),
    ) -> Telemetry:
        """`span_processors`: extra consumers of every span (an embedding's own; in-process tests)."""
        tracing_config = config.tracing
        exporter = tracing_config.exporter or _ENV_EXPORTERS.get(
            os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower(), "none"
        )
        settings = TracingSettings(
            exporter=exporter,
            endpoint=tracing_config.endpoint,
            headers=tracing_config.headers,
            service_name=tracing_config.service_name,
            project_name=tracing_config.project_name,
            sample_ratio=tracing_config.sample_ratio,
            session_header=config.session_header,
        )
        tracing = Tracing(settings, processors=span_processors)
        meter_provider = _otlp_meter_provider(config, exporter) if config.metrics.otlp else None
        serve = config.metrics.prometheus if prometheus is None else prometheus
        metrics = (
            Metrics(prometheus=serve, meter_provider=meter_provider) if serve or meter_provider is not None else None
        )
        telemetry = cls(tracing, metrics, policy)
        telemetry._meter_provider = meter_provider
        if tracing.enabled:
            log.info("tracing: spans to %s", exporter)
        return telemetry

    def recording(self, tenant: str) -> Recording:
        """What this tenant's traces may hold: the environment's OPENINFERENCE_HIDE_* under its policy's controls."""
        policy = self._policy()
        if policy is None:
            return self._base
        key = (policy.version, tenant)
        found = self._recordings.get(key)
        if found is None:
            controls = policy.recording_for(tenant)
            found = self._base.overridden(controls) if controls else self._base
            if len(self._recordings) > 10_000:
                self._recordings.clear()
            self._recordings[key] = found
        return found

    def start_call(
        self,
        call: Call,
        upstream: str,
        target: str | None,
        tool: dict[str, Any] | None,
        arguments: Any,
        start_ns: int | None = None,
    ) -> McpSpan | LeanMcpSpan | NoopMcpSpan:
        """The SERVER span of one call: `target` is the tool or prompt name or the resource URI, `tool` the
        tool's definition, `arguments` what the call carries (as the upstream gets it when it was routed)."""
        tracing = self.tracing
        headers = call.headers or {}
        meta = call.params.get("_meta")
        meta = meta if isinstance(meta, dict) else None
        principal = call.principal
        span = tracing.start_mcp(
            call.method,
            target=target,
            parent=tracing.extract(headers, meta),
            request_id=call.request_id,
            session_id=tracing.session_id(headers, meta) or session_of(call),
            protocol_version=call.client.protocol_version,
            transport=call.transport,
            tenant=principal.tenant,
            subject=principal.subject,
            upstream=upstream or None,
            tool=tool,
            arguments=arguments,
            recording=self.recording(principal.tenant),
            mcp_session_id=call.client.session_id,
            start_time_ns=start_ns,
        )
        return span

    def shutdown(self) -> None:
        self.tracing.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown()


def session_of(call: Call) -> str | None:
    """session.id for a client that sends none of its own (the agent-session-id header or `_meta` key), so
    Phoenix still groups its traces: derived from its Mcp-Session-Id (a sealed token of ~150 characters, so a
    short digest of it), or for a 2026-07-28 client, which has no session, from the caller and the client's
    name and version (stable across calls, processes and restarts)."""
    client = call.client
    if client.session_id:
        seed: Any = client.session_id
    elif client.modern:
        info = client.client_info or {}
        principal = call.principal
        seed = (principal.tenant, principal.subject, str(info.get("name", "")), str(info.get("version", "")))
    else:
        return None
    found = _sessions.get(seed)
    if found is None:
        text = seed if isinstance(seed, str) else "\x00".join(seed)
        found = "mcp-" + hashlib.sha256(text.encode()).hexdigest()[:24]
        if len(_sessions) >= _SESSIONS_LIMIT:
            _sessions.clear()
        _sessions[seed] = found
    return found


_sessions: dict[Any, str] = {}  # seed -> session.id: one digest per session, not per call
_SESSIONS_LIMIT = 10_000


def _otlp_meter_provider(config: TelemetryConfig, exporter: str) -> Any:
    """A MeterProvider pushing by OTLP; each worker process is its own service.instance.id, so a collector
    never mixes the cumulative series of two workers."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    grpc = exporter == "otlp-grpc" or (
        exporter == "otlp" and os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").startswith("grpc")
    )
    endpoint = config.tracing.endpoint
    if grpc:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        metric_exporter: Any = GrpcExporter(endpoint=endpoint, headers=dict(config.tracing.headers) or None)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        url = endpoint.rstrip("/") + "/v1/metrics" if endpoint and endpoint.count("/") <= 2 else endpoint
        metric_exporter = HttpExporter(endpoint=url, headers=dict(config.tracing.headers) or None)
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=config.metrics.otlp_interval * 1000)
    resource = Resource.create(
        {
            "service.name": config.tracing.service_name or os.environ.get("OTEL_SERVICE_NAME", "mcp-gateway"),
            "service.instance.id": f"{os.getpid()}-{uuid.uuid4().hex[:8]}",
        }
    )
    return MeterProvider(resource=resource, metric_readers=[reader])
