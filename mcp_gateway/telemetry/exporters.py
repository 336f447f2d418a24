"""Choosing and building the OTLP span exporter the export process runs; no import of the rest of tracing,
so both the gateway side (tracing_setup) and the export process can use it."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from opentelemetry.sdk.environment_variables import OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

_TRACES_PATH = "/v1/traces"


def build_exporter(name: str, endpoint: str | None, headers: dict[str, str] | None) -> SpanExporter:
    """The OTLP exporter itself (in the export process)."""
    if name == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=endpoint, headers=headers)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=http_traces_endpoint(endpoint), headers=headers)


def exporter_for_protocol() -> str:
    protocol = os.environ.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) or os.environ.get(OTEL_EXPORTER_OTLP_PROTOCOL)
    protocol = (protocol or "http/protobuf").strip().lower()
    if protocol == "grpc":
        return "otlp-grpc"
    if protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not supported by the Python exporter; using http/protobuf", protocol)
    return "otlp-http"


def http_traces_endpoint(endpoint: str | None) -> str | None:
    """An endpoint without a path is a collector's base URL (like OTEL_EXPORTER_OTLP_ENDPOINT): the traces path
    is appended. One with a path is used as given (like OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)."""
    if not endpoint:
        return None
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + _TRACES_PATH
    return endpoint
