"""The TracerProvider behind `Tracing`: resource, sampler, span limits and exporter from `TracingSettings` and
the standard OTEL_* variables, with the SDK's precedence (an explicit setting beats the variable, which beats
the default). The exporter modules are imported only when chosen: grpcio is slow to import and often unused."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from openinference.semconv.resource import ResourceAttributes
from opentelemetry.sdk.environment_variables import (
    OTEL_ATTRIBUTE_COUNT_LIMIT,
    OTEL_SDK_DISABLED,
    OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from .export_process import PipeSpanExporter
from .exporters import exporter_for_protocol, http_traces_endpoint

__all__ = ["build_provider", "http_traces_endpoint", "sdk_disabled"]

if TYPE_CHECKING:
    from .tracing import TracingSettings

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "mcp-gateway"
EXPORTERS = ("otlp", "otlp-http", "otlp-grpc", "console", "none")
# LLM spans flatten every message and tool into attributes; the SDK's default limit (128) would silently drop
# most of a long conversation. OpenInference's own TracerProvider uses the same limit.
_ATTRIBUTE_LIMIT = 10_000


def sdk_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


def build_provider(
    settings: TracingSettings, processors: Sequence[SpanProcessor]
) -> tuple[TracerProvider | None, PipeSpanExporter | None]:
    """The provider, or None when nothing would ever see a span (exporter "none" and no processors, or
    OTEL_SDK_DISABLED=true, which the SDK itself honours by handing out no-op tracers); and the pipe to the
    export process when spans are exported by OTLP (lean spans can use it directly)."""
    exporter_name = settings.exporter.strip().lower()
    if exporter_name not in EXPORTERS:
        raise ValueError(f"unknown trace exporter {settings.exporter!r}; expected one of {', '.join(EXPORTERS)}")
    if sdk_disabled() or (exporter_name == "none" and not processors):
        return None, None
    resource = _resource(settings)
    provider = TracerProvider(resource=resource, sampler=_sampler(settings), span_limits=_span_limits())
    exporter: SpanExporter | None = None
    if exporter_name != "none":
        exporter = _exporter(exporter_name, settings, resource)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider, exporter if isinstance(exporter, PipeSpanExporter) else None


def _resource(settings: TracingSettings) -> Resource:
    attributes: dict[str, str] = {}
    if settings.service_name:
        attributes[SERVICE_NAME] = settings.service_name
    if settings.project_name:
        attributes[ResourceAttributes.PROJECT_NAME] = settings.project_name
    resource = Resource.create(attributes)  # merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME under these
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _sampler(settings: TracingSettings) -> Sampler | None:
    """None lets the SDK read OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based always-on)."""
    ratio = settings.sample_ratio
    if ratio is None:
        return None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sample_ratio must be between 0 and 1, not {ratio}")
    # Parent-based: a client that sampled its trace gets the gateway's spans in it, whatever the ratio.
    return ParentBased(TraceIdRatioBased(ratio))


def _span_limits() -> SpanLimits:
    if os.environ.get(OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT) or os.environ.get(OTEL_ATTRIBUTE_COUNT_LIMIT):
        return SpanLimits()  # the operator's limit
    return SpanLimits(max_span_attributes=_ATTRIBUTE_LIMIT)


def _exporter(name: str, settings: TracingSettings, resource: Resource) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        name = exporter_for_protocol()
    headers = dict(settings.headers) or None  # None: the SDK reads OTEL_EXPORTER_OTLP_(TRACES_)HEADERS
    # OTLP encoding is the costly part of tracing: it runs in a child process (export_process.py).
    return PipeSpanExporter(name, settings.endpoint, headers, resource)
