"""Span export in a child process.

Encoding a span to OTLP protobuf costs ~90 us of Python per span, on the exporter thread but under the
gateway's GIL: at a few thousand calls a second that was a fifth of a core, and every export burst stalled
requests by a GIL switch interval (p99 +5 ms). Here the exporter thread only flattens each finished span to
plain data and pickles the batch down a pipe (a few us per span); a child process, on another core when there
is one, exports them. For OTLP/HTTP it writes the protobuf itself (`otlp_encode`, ~7x cheaper than the SDK's
encoder: on a small box the child competes with the gateway for CPU) and POSTs it (`otlp_http`); for gRPC it
rebuilds the spans and runs the SDK's exporter.

    python -m mcp_gateway.telemetry.export_process '<settings JSON>'   (started by `PipeSpanExporter`)
"""

from __future__ import annotations

import json
import logging
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")


class PipeSpanExporter(SpanExporter):
    """Hands span batches to a child process that exports them with the configured OTLP exporter."""

    def __init__(self, exporter: str, endpoint: str | None, headers: dict[str, str] | None, resource: Resource) -> None:
        self._settings = {"exporter": exporter, "endpoint": endpoint, "headers": headers}
        self._resource = dict(resource.attributes)
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._broken = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.send([flatten(span) for span in spans])

    def send(self, batch: list[tuple[Any, ...]]) -> SpanExportResult:
        """Flat spans (see `flatten`) to the export process; from any thread."""
        if self._broken:
            return SpanExportResult.FAILURE
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            try:
                child = self._child or self._start()
                assert child.stdin is not None
                child.stdin.write(_LENGTH.pack(len(data)) + data)
                child.stdin.flush()
            except (OSError, ValueError) as exc:
                log.warning("span export process is gone (%s); spans are dropped from now on", exc)
                self._broken = True
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def start(self) -> None:
        """Starts the child now rather than with the first batch: its imports (~0.5 s of CPU) then happen
        at gateway start, not under the first traced load."""
        with self._lock:
            if self._child is None and not self._broken:
                self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        settings = json.dumps({**self._settings, "resource": self._resource})
        self._child = subprocess.Popen(
            [sys.executable, "-m", __name__, settings], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        return self._child

    def shutdown(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is None or child.stdin is None:
            return
        try:
            child.stdin.close()  # end of input: the child exports what it has and exits
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def flatten(span: ReadableSpan) -> tuple[Any, ...]:
    """A finished span as plain, picklable data (the SDK's objects hold locks)."""
    context = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    return (
        span.name,
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        (parent.trace_id, parent.span_id, parent.is_remote) if parent is not None else None,
        span.kind.value,
        span.start_time,
        span.end_time,
        dict(span.attributes or {}),
        [(event.name, event.timestamp, dict(event.attributes or {})) for event in span.events],
        [(link.context.trace_id, link.context.span_id, dict(link.attributes or {})) for link in span.links],
        span.status.status_code.value,
        span.status.description,
        (scope.name, scope.version) if scope is not None else ("mcp_gateway", None),
    )


def rebuild(flat: tuple[Any, ...], resource: Resource) -> ReadableSpan:
    name, trace_id, span_id, flags, parent, kind, start, end, attributes, events, links, code, text, scope = flat
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags)),
        parent=SpanContext(parent[0], parent[1], is_remote=parent[2]) if parent is not None else None,
        resource=resource,
        attributes=attributes,
        events=[Event(event_name, event_attributes, timestamp) for event_name, timestamp, event_attributes in events],
        links=[Link(SpanContext(t, s, is_remote=True), a) for t, s, a in links],
        kind=SpanKind(kind),
        status=Status(StatusCode(code), text),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(scope[0], scope[1]),
    )


def _read_batches(stream: BinaryIO) -> Any:
    while True:
        header = stream.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return
        (size,) = _LENGTH.unpack(header)
        data = stream.read(size)
        if len(data) < size:  # the gateway stopped mid-batch (its writer was killed at shutdown)
            return
        yield pickle.loads(data)


def main() -> None:
    settings = json.loads(sys.argv[1])
    resource = Resource(settings["resource"])
    send, close = _http_export(settings, resource) or _sdk_export(settings, resource)
    for batch in _read_batches(sys.stdin.buffer):
        try:
            send(batch)
        except Exception as exc:  # one bad batch must not end the process (and all export with it)
            log.warning("a batch of %d span(s) was not exported: %s", len(batch), exc)
    close()


_Export = tuple[Callable[[list[tuple[Any, ...]]], object], Callable[[], object]]


def _http_export(settings: dict[str, Any], resource: Resource) -> _Export | None:
    """OTLP/HTTP with our own encoder and client (~7x cheaper than the SDK's encoding), when it can do what the
    SDK exporter would; None otherwise."""
    from .exporters import exporter_for_protocol, http_traces_endpoint
    from .otlp_encode import encode_request
    from .otlp_http import OtlpHttpSender, resolve_target, sdk_needed

    name = settings["exporter"]
    if (exporter_for_protocol() if name == "otlp" else name) != "otlp-http":
        return None
    target = resolve_target(http_traces_endpoint(settings["endpoint"]), settings["headers"])
    reason = sdk_needed(target)
    if reason is not None:
        log.info("spans go through the SDK's OTLP/HTTP exporter: %s", reason)
        return None
    sender = OtlpHttpSender(target)
    attributes = resource.attributes  # cleaned by `Resource`, as the SDK encoder would see them
    return lambda batch: sender.send(encode_request(attributes, batch), len(batch)), sender.close


def _sdk_export(settings: dict[str, Any], resource: Resource) -> _Export:
    from .exporters import build_exporter, exporter_for_protocol

    name = exporter_for_protocol() if settings["exporter"] == "otlp" else settings["exporter"]
    exporter = build_exporter(name, settings["endpoint"], settings["headers"])
    return lambda batch: exporter.export([rebuild(flat, resource) for flat in batch]), exporter.shutdown


if __name__ == "__main__":
    main()
