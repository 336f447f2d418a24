"""A real OTLP receiver for tests: what the gateway's exporters put on the wire, decoded with opentelemetry-proto.

OTLP/HTTP on 127.0.0.1 (ephemeral port by default): `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with
`application/x-protobuf` or `application/json` bodies (gzip/deflate accepted), answered as the spec says
(an empty Export*ServiceResponse in the request's encoding). Optionally OTLP/gRPC too (grpcio comes with the
gRPC exporter). Spans are kept as plain dicts:

    {trace_id, span_id, parent_span_id ("" for a root), name, kind ("SERVER"...), attributes {key: value},
     status {code ("UNSET"|"OK"|"ERROR"), message}, resource {key: value}, scope, start_time_unix_nano,
     end_time_unix_nano, events [{name, time_unix_nano, attributes}], links [{trace_id, span_id, attributes}],
     trace_state, transport ("http/protobuf"|"http/json"|"grpc")}

In-process: `with OtlpReceiver() as receiver: ... receiver.wait_for_spans(3)`.
As a process: `python -m tests.support.otlp_receiver --port N [--grpc-port M]` prints `listening http=N grpc=M`
then `ready`, and serves `GET /spans` (`/metrics`, `/logs`, `/requests`) as JSON; `DELETE /spans` forgets all.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import signal
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_SIGNALS: dict[str, tuple[type[Message], type[Message]]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})  # hex in OTLP/JSON, base64 in protobuf's JSON mapping


# -- decoding: protobuf messages -> plain dicts ------------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def spans_of(request: ExportTraceServiceRequest, transport: str) -> list[dict[str, Any]]:
    out = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(_span(span, resource, scope_spans.scope.name, transport))
    return out


def _span(span: Span, resource: dict[str, Any], scope: str, transport: str) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        "attributes": attributes_of(span.attributes),
        "status": {
            "code": Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
            "message": span.status.message,
        },
        "resource": resource,
        "scope": scope,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "events": [
            {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": attributes_of(e.attributes)}
            for e in span.events
        ],
        "links": [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": attributes_of(link.attributes),
            }
            for link in span.links
        ],
        "trace_state": span.trace_state,
        "transport": transport,
    }


def metrics_of(request: ExportMetricsServiceRequest, transport: str) -> list[dict[str, Any]]:
    out = []
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data") or ""
                points = getattr(metric, kind).data_points if kind else []
                out.append(
                    {
                        "name": metric.name,
                        "unit": metric.unit,
                        "description": metric.description,
                        "type": kind,
                        "data_points": [_point(p) for p in points],
                        "resource": resource,
                        "scope": scope_metrics.scope.name,
                        "transport": transport,
                    }
                )
    return out


def _point(point: Any) -> dict[str, Any]:
    data = json_format.MessageToDict(point, preserving_proto_field_name=True)
    data["attributes"] = attributes_of(point.attributes)
    return data


def logs_of(request: ExportLogsServiceRequest, transport: str) -> list[dict[str, Any]]:
    out = []
    for resource_logs in request.resource_logs:
        resource = attributes_of(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                out.append(
                    {
                        "body": any_value(record.body),
                        "severity_text": record.severity_text,
                        "severity_number": record.severity_number,
                        "attributes": attributes_of(record.attributes),
                        "trace_id": record.trace_id.hex(),
                        "span_id": record.span_id.hex(),
                        "time_unix_nano": record.time_unix_nano,
                        "resource": resource,
                        "scope": scope_logs.scope.name,
                        "transport": transport,
                    }
                )
    return out


def parse_json(body: bytes, message_type: type[Message]) -> Message:
    """OTLP/JSON into the protobuf message: its ids are hex where protobuf's JSON mapping expects base64."""
    return json_format.ParseDict(_ids_to_base64(json.loads(body)), message_type(), ignore_unknown_fields=True)


def _ids_to_base64(node: Any) -> Any:
    if isinstance(node, list):
        return [_ids_to_base64(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: base64.b64encode(bytes.fromhex(value)).decode()
        if key in _ID_KEYS and isinstance(value, str)
        else _ids_to_base64(value)
        for key, value in node.items()
    }


# -- the receiver -------------------------------------------------------------------------------------------------


class OtlpReceiver:
    """OTLP/HTTP (and optionally gRPC) on 127.0.0.1; everything received is kept until `clear()`."""

    def __init__(self, port: int = 0, *, grpc_port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self._requested_port = port
        self._requested_grpc_port = grpc_port  # None: no gRPC listener; 0: an ephemeral port
        self._changed = threading.Condition()
        self._spans: list[dict[str, Any]] = []
        self._metrics: list[dict[str, Any]] = []
        self._logs: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._http: ThreadingHTTPServer | None = None
        self._grpc: Any = None
        self.port = 0
        self.grpc_port: int | None = None

    # where to send ----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        if self.grpc_port is None:
            raise RuntimeError("this receiver has no gRPC listener (pass grpc_port=0)")
        return f"http://{self.host}:{self.grpc_port}"

    # what arrived -----------------------------------------------------------------------------------------------

    def spans(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._spans)

    def metrics(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._metrics)

    def logs(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._logs)

    def requests(self) -> list[dict[str, Any]]:
        """One entry per export request: path (or gRPC method), content type, headers (or gRPC metadata)."""
        with self._changed:
            return list(self._requests)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait(lambda: self._spans, count, timeout, "spans")

    def wait_for_metrics(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait(lambda: self._metrics, count, timeout, "metrics")

    def wait_for_logs(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait(lambda: self._logs, count, timeout, "log records")

    def clear(self) -> None:
        with self._changed:
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._requests.clear()

    def _wait(self, items: Callable[[], list[dict[str, Any]]], count: int, timeout: float, what: str) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(items()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} {what}, received {len(items())}")
                self._changed.wait(remaining)
            return list(items())

    # recording (both transports) --------------------------------------------------------------------------------

    def record(self, path: str, message: Message, transport: str, headers: dict[str, str]) -> None:
        with self._changed:
            self._requests.append({"path": path, "transport": transport, "headers": headers})
            if isinstance(message, ExportTraceServiceRequest):
                self._spans.extend(spans_of(message, transport))
            elif isinstance(message, ExportMetricsServiceRequest):
                self._metrics.extend(metrics_of(message, transport))
            elif isinstance(message, ExportLogsServiceRequest):
                self._logs.extend(logs_of(message, transport))
            self._changed.notify_all()

    # lifecycle --------------------------------------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        self._http = ThreadingHTTPServer((self.host, self._requested_port), _handler_for(self))
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, name="otlp-receiver-http", daemon=True).start()
        if self._requested_grpc_port is not None:
            self._grpc, self.grpc_port = _start_grpc(self, self.host, self._requested_grpc_port)
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the exporters keep their connection alive

        def do_POST(self) -> None:
            signal_types = _SIGNALS.get(self.path.split("?", 1)[0])
            body = self._body()
            if signal_types is None:
                self._reply(404, "text/plain", b"not an OTLP path")
                return
            request_type, response_type = signal_types
            content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            try:
                if content_type == PROTOBUF:
                    message = request_type.FromString(body)
                    transport, reply = "http/protobuf", response_type().SerializeToString()
                elif content_type == JSON:
                    message = parse_json(body, request_type)
                    transport, reply = "http/json", b"{}"
                else:
                    self._reply(415, "text/plain", b"use application/x-protobuf or application/json")
                    return
            except (DecodeError, json_format.ParseError, ValueError) as error:
                self._reply(400, "text/plain", str(error).encode())
                return
            receiver.record(self.path, message, transport, {k.lower(): v for k, v in self.headers.items()})
            self._reply(200, content_type, reply)

        def do_GET(self) -> None:
            views = {
                "/spans": receiver.spans,
                "/metrics": receiver.metrics,
                "/logs": receiver.logs,
                "/requests": receiver.requests,
            }
            if self.path == "/healthz":
                self._reply(200, "text/plain", b"ok")
            elif self.path in views:
                self._reply(200, JSON, json.dumps(views[self.path]()).encode())
            else:
                self._reply(404, "text/plain", b"not found")

        def do_DELETE(self) -> None:
            receiver.clear()
            self._reply(204, "text/plain", b"")

        def _body(self) -> bytes:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                return gzip.decompress(body)
            if encoding == "deflate":
                return zlib.decompress(body)
            return body

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet: tests read what arrived, not the access log

    return Handler


def _start_grpc(receiver: OtlpReceiver, host: str, port: int) -> tuple[Any, int]:
    """The three OTLP gRPC services; imported here so the HTTP-only receiver never loads grpcio."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    def export(path: str, response_type: type[Message]) -> Callable[[Any, Any, Any], Message]:
        def handle(_self: Any, request: Message, context: Any) -> Message:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            receiver.record(path, request, "grpc", metadata)
            return response_type()

        return handle

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    services = (
        (trace_service_pb2_grpc, "TraceServiceServicer", "add_TraceServiceServicer_to_server", "/v1/traces"),
        (metrics_service_pb2_grpc, "MetricsServiceServicer", "add_MetricsServiceServicer_to_server", "/v1/metrics"),
        (logs_service_pb2_grpc, "LogsServiceServicer", "add_LogsServiceServicer_to_server", "/v1/logs"),
    )
    for module, servicer_name, add_name, path in services:
        servicer_type = type(
            servicer_name, (getattr(module, servicer_name),), {"Export": export(path, _SIGNALS[path][1])}
        )
        getattr(module, add_name)(servicer_type(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OTLP receiver for tests (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="OTLP/HTTP port (0: ephemeral)")
    parser.add_argument("--grpc-port", type=int, default=None, help="also serve OTLP/gRPC on this port (0: ephemeral)")
    args = parser.parse_args(argv)
    receiver = OtlpReceiver(args.port, grpc_port=args.grpc_port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    grpc_part = f" grpc={receiver.grpc_port}" if receiver.grpc_port is not None else ""
    print(f"listening http={receiver.port}{grpc_part}", flush=True)
    print("ready", flush=True)
    stop.wait()
    receiver.stop()


if __name__ == "__main__":
    main()
