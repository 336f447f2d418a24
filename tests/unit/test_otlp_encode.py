"""OTLP/protobuf written from flat spans (mcp_gateway.telemetry.otlp_encode) must be what the SDK's encoder writes
for the same spans rebuilt (`encode_spans([rebuild(flat, resource)])`): the parsed messages equal, and the bytes
too (both write fields in number order). Then the OTLP/HTTP sender (otlp_http) against real HTTP servers on
127.0.0.1, and the export process choosing it."""

from __future__ import annotations

import enum
import gzip
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from mcp_gateway.telemetry.export_process import PipeSpanExporter, _http_export, flatten, rebuild
from mcp_gateway.telemetry.otlp_encode import encode_request
from mcp_gateway.telemetry.otlp_http import HttpTarget, OtlpHttpSender, resolve_target, sdk_needed
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.tls import self_signed

RESOURCE = {"service.name": "mcp-gateway", "openinference.project.name": "tests", "host.cores": 2}
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
T0 = 1_700_000_000_000_000_000
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def flat_span(
    name: str = "tools/call get_weather",
    *,
    trace_id: int = TRACE,
    span_id: int = SPAN,
    parent: tuple[int, int, bool] | None = None,
    kind: int = SpanKind.SERVER.value,
    start: int = T0,
    end: int = T0 + 5_000_000,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[tuple[str, int, dict[str, Any]]] = (),
    links: Sequence[tuple[int, int, dict[str, Any]]] = (),
    code: int = StatusCode.UNSET.value,
    text: str | None = None,
    scope: tuple[str, str | None] = ("mcp_gateway", "0.1.0"),
) -> tuple[Any, ...]:
    attrs = dict(attributes or {})
    return (name, trace_id, span_id, 1, parent, kind, start, end, attrs, list(events), list(links), code, text, scope)


def sdk_request(flats: Sequence[tuple[Any, ...]], resource: Mapping[str, Any] = RESOURCE) -> ExportTraceServiceRequest:
    sdk_resource = Resource(dict(resource))
    return encode_spans([rebuild(flat, sdk_resource) for flat in flats])


def ours(flats: Sequence[tuple[Any, ...]], resource: Mapping[str, Any] = RESOURCE) -> bytes:
    # The export process hands over `Resource(...).attributes`, as cleaned as the SDK encoder sees them.
    return encode_request(Resource(dict(resource)).attributes, flats)


def assert_as_sdk(
    flats: Sequence[tuple[Any, ...]],
    resource: Mapping[str, Any] = RESOURCE,
    *,
    expected: Sequence[tuple[Any, ...]] | None = None,
) -> ExportTraceServiceRequest:
    data = ours(flats, resource)
    reference = sdk_request(flats if expected is None else expected, resource)
    parsed = ExportTraceServiceRequest.FromString(data)
    assert parsed == reference
    assert data == reference.SerializePartialToString()
    return parsed


def without_none(flat: tuple[Any, ...]) -> tuple[Any, ...]:
    """The span with None-valued attributes removed, as the SDK's own spans hold them."""

    def clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in attributes.items() if value is not None}

    events = [(name, ts, clean(attrs)) for name, ts, attrs in flat[9]]
    links = [(trace_id, span_id, clean(attrs)) for trace_id, span_id, attrs in flat[10]]
    return (*flat[:8], clean(flat[8]), events, links, *flat[11:])


# -- the encoder, case by case ----------------------------------------------------------------------------------


def test_a_root_span() -> None:
    parsed = assert_as_sdk([flat_span(attributes={"mcp.method.name": "tools/call"})])
    (resource_spans,) = parsed.resource_spans
    (scope_spans,) = resource_spans.scope_spans
    (span,) = scope_spans.spans
    assert (span.trace_id.hex(), span.span_id.hex(), span.parent_span_id) == (f"{TRACE:032x}", f"{SPAN:016x}", b"")
    assert span.flags == 0x100  # "has is_remote", not remote; the trace flags stay out, as the SDK writes them
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("mcp_gateway", "0.1.0")


@pytest.mark.parametrize("remote", [False, True])
def test_a_child_span_of_a_local_or_remote_parent(remote: bool) -> None:
    parsed = assert_as_sdk([flat_span(parent=(TRACE, 0x1122334455667788, remote))])
    span = parsed.resource_spans[0].scope_spans[0].spans[0]
    assert span.parent_span_id.hex() == "1122334455667788"
    assert span.flags == (0x300 if remote else 0x100)


def test_every_attribute_value_type() -> None:
    attributes = {
        "str": "get_weather",
        "empty": "",
        "unicode": "Zürich 東京 🌦",
        "true": True,
        "false": False,
        "zero": 0,
        "int": 15,
        "negative": -42,
        "int64.max": INT64_MAX,
        "int64.min": INT64_MIN,
        "large": 1 << 40,
        "float": 0.25,
        "float.negative": -1e300,
        "float.zero": 0.0,
        "bytes": b"\x00\xff",
        "bytes.empty": b"",
        "list.str": ["stop", "", "längd"],
        "list.int": [1, -1, INT64_MAX, INT64_MIN],
        "list.float": [1.5, -0.0, 1e-300],
        "list.bool": [True, False],
        "list.empty": [],
        "tuple.str": ("a", "b"),
        "list.with.none": ["a", None],
        "": "an empty key",
        "é.key": "unicode key",
    }
    assert_as_sdk([flat_span(attributes=attributes)])


def test_events_and_links_with_attributes() -> None:
    events = [
        ("First Token Stream Event", T0 + 200_000_000, {}),
        ("exception", T0 + 300_000_000, {"exception.type": "ValueError", "exception.escaped": False}),
        ("", T0 + 1, {"count": 3, "tags": ["a", "b"]}),
    ]
    links = [(TRACE + 1, SPAN + 1, {}), (1, 2, {"link.kind": "follows", "weight": 0.5})]
    parsed = assert_as_sdk([flat_span(events=events, links=links)])
    span = parsed.resource_spans[0].scope_spans[0].spans[0]
    assert [link.flags for link in span.links] == [0x300, 0x300]  # flattened links are remote, as `rebuild` says


@pytest.mark.parametrize(
    ("code", "text"),
    [(0, None), (0, "dropped: not an error"), (1, None), (1, "dropped too"), (2, "no such city"), (2, None), (2, "")],
)
def test_status(code: int, text: str | None) -> None:
    parsed = assert_as_sdk([flat_span(code=code, text=text)])
    status = parsed.resource_spans[0].scope_spans[0].spans[0].status
    assert (status.code, status.message) == (code, text if code == 2 and text else "")


@pytest.mark.parametrize("kind", [kind.value for kind in SpanKind])
def test_span_kinds(kind: int) -> None:
    assert_as_sdk([flat_span(kind=kind)])


def test_unusual_spans() -> None:
    assert_as_sdk(
        [
            flat_span(name="", start=0, end=0),
            flat_span(start=T0, end=0),
            flat_span(start=0, end=T0),
            flat_span(trace_id=0, span_id=0, parent=(0, 0, False)),
            flat_span(trace_id=(1 << 128) - 1, span_id=(1 << 64) - 1, start=(1 << 64) - 1, end=(1 << 64) - 1),
        ]
    )


def test_spans_are_grouped_by_scope_in_order_of_first_appearance() -> None:
    scopes = [
        ("mcp_gateway", "0.1.0"),
        ("llm_bridge", None),
        ("mcp_gateway", "0.1.0"),
        ("", None),
        ("llm_bridge", None),
    ]
    flats = [flat_span(f"span {i}", span_id=i + 1, scope=scope) for i, scope in enumerate(scopes)]
    parsed = assert_as_sdk(flats)
    (resource_spans,) = parsed.resource_spans
    grouped = [
        (group.scope.name, group.scope.version, [span.name for span in group.spans])
        for group in resource_spans.scope_spans
    ]
    assert grouped == [
        ("mcp_gateway", "0.1.0", ["span 0", "span 2"]),
        ("llm_bridge", "", ["span 1", "span 4"]),
        ("", "", ["span 3"]),
    ]


def test_none_values_are_left_out() -> None:
    # The SDK encoder would write a valueless KeyValue; its own spans never hold None (set_attribute drops it).
    flat = flat_span(
        attributes={"kept": "x", "none": None, "list": [None, "y"]},
        events=[("e", T0, {"none": None, "n": 1})],
        links=[(1, 2, {"none": None})],
    )
    assert_as_sdk([flat], expected=[without_none(flat)])


def test_a_value_the_sdk_cannot_encode_costs_its_attribute_only(caplog: pytest.LogCaptureFixture) -> None:
    attributes = {
        "before": 1,
        "too.large": 1 << 63,
        "too.small": INT64_MIN - 1,
        "list.too.large": [1, 1 << 64],
        "object": object(),
        "surrogate": "\ud800",
        "\udfff": "surrogate key",
        "after": 2,
    }
    with caplog.at_level(logging.CRITICAL):  # both encoders log each dropped attribute
        parsed = assert_as_sdk([flat_span(attributes=attributes)])
    kept = [kv.key for kv in parsed.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert kept == ["before", "after"]


def test_subclasses_and_mappings_are_encoded_as_the_sdk_does() -> None:
    class Kind(enum.StrEnum):
        TOOL = "TOOL"

    class Code(enum.IntEnum):
        OK = 7

    class Ratio(float):
        pass

    attributes = {
        "str.enum": Kind.TOOL,
        "int.enum": Code.OK,
        "float.subclass": Ratio(0.5),
        "mapping": {"a": 1, "b": ["x"], "c": None, "d": {"e": True}},
        "bytearray": bytearray(b"ab"),  # a Sequence of ints to the SDK
    }
    assert_as_sdk([flat_span(attributes=attributes)])


def test_special_floats() -> None:
    attributes = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "list": [math.nan, math.inf]}
    # NaN is not equal to itself, so the messages cannot be compared: the bytes can.
    assert (
        ours([flat_span(attributes=attributes)]) == sdk_request([flat_span(attributes=attributes)]).SerializeToString()
    )


def test_long_values_take_multi_byte_lengths() -> None:
    attributes = {f"llm.input_messages.{i}.message.content": "x" * size for i, size in enumerate((127, 128, 16_383))}
    attributes |= {"big": "y" * 16_384, "bigger": "é" * 200_000, "array": ["z" * 20_000] * 3}
    events = [("e", T0, {"big": "w" * 70_000})]
    assert_as_sdk([flat_span(attributes=attributes, events=events, span_id=i + 1) for i in range(3)])


def test_many_attributes_and_an_empty_resource() -> None:
    attributes = {f"k{i}": i if i % 2 else f"v{i}" for i in range(3_000)}
    assert_as_sdk([flat_span(attributes=attributes)], resource={})


def test_an_empty_batch_is_an_empty_request() -> None:
    assert ours([]) == sdk_request([]).SerializeToString() == b""


def test_spans_of_the_sdk_flattened() -> None:
    """Real SDK spans (set_attribute's cleaning, events, links, status) through `flatten`, as the gateway ships them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("mcp_gateway", "0.1.0")
    remote = SpanContext(TRACE, SPAN, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span(
        "tools/call", context=set_span_in_context(NonRecordingSpan(remote)), kind=SpanKind.SERVER
    ) as outer:
        outer.set_attributes({"a": "b", "n": 3, "f": 0.5, "l": ["x", "y"], "ok": True})
        outer.add_event("started", {"step": 1})
        with provider.get_tracer("llm_bridge").start_as_current_span(
            "chat", kind=SpanKind.CLIENT, links=[Link(remote, {"why": "retry"})]
        ) as inner:
            inner.set_status(Status(StatusCode.ERROR, "upstream timed out"))
    flats = [flatten(span) for span in memory.get_finished_spans()]
    parsed = assert_as_sdk(flats, resource=dict(provider.resource.attributes))
    assert [len(group.spans) for group in parsed.resource_spans[0].scope_spans] == [1, 1]


# -- the encoder, property-based --------------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no surrogates: not UTF-8 encodable
_int64 = st.integers(INT64_MIN, INT64_MAX)
_float = st.floats(allow_nan=False)
_scalar = st.one_of(_text, st.booleans(), _int64, _float, st.binary(max_size=8))
_array = st.one_of(
    st.lists(st.one_of(_text, st.none()), max_size=4),
    st.lists(st.booleans(), max_size=4),
    st.lists(_int64, max_size=4),
    st.lists(_float, max_size=4),
).flatmap(lambda values: st.sampled_from([values, tuple(values)]))
_value = st.one_of(_scalar, _array, st.none())
_attributes = st.dictionaries(_text, _value, max_size=8)
_u64 = st.integers(0, (1 << 64) - 1)
_trace_id = st.integers(0, (1 << 128) - 1)
_flat_spans = st.builds(
    flat_span,
    name=_text,
    trace_id=_trace_id,
    span_id=_u64,
    parent=st.none() | st.tuples(_trace_id, _u64, st.booleans()),
    kind=st.integers(0, 4),
    start=_u64,
    end=_u64,
    attributes=_attributes,
    events=st.lists(st.tuples(_text, _u64, _attributes), max_size=3),
    links=st.lists(st.tuples(_trace_id, _u64, _attributes), max_size=3),
    code=st.integers(0, 2),
    text=st.none() | _text,
    scope=st.sampled_from([("mcp_gateway", "0.1.0"), ("mcp_gateway", None), ("llm_bridge", "1"), ("", None)]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flats=st.lists(_flat_spans, max_size=5), resource=st.dictionaries(_text, _scalar | _array, max_size=4))
def test_any_flat_spans_encode_as_the_sdk_does(flats: list[tuple[Any, ...]], resource: dict[str, Any]) -> None:
    assert_as_sdk(flats, resource, expected=[without_none(flat) for flat in flats])


# -- the OTLP/HTTP sender ---------------------------------------------------------------------------------------

_OTLP_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)


@pytest.fixture
def otlp_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _OTLP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("endpoint", "headers", "environ"),
    [
        (None, None, {}),
        ("http://collector:4318/custom/path", None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://ignored/v1/traces"}),
        (None, None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/otlp"}),
        (None, None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}),
        (None, None, {"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cret,Authorization=Bearer%20a%3Db"}),
        (
            None,
            {"X-Api-Key": "explicit"},
            {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=env,x-team=core", "OTEL_EXPORTER_OTLP_HEADERS": "x-no=1"},
        ),
        (None, None, {"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP", "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5"}),
        (None, None, {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "deflate", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30"}),
    ],
)
def test_the_sender_is_configured_as_the_sdk_exporter(
    otlp_env: pytest.MonkeyPatch, endpoint: str | None, headers: dict[str, str] | None, environ: dict[str, str]
) -> None:
    for name, value in environ.items():
        otlp_env.setenv(name, value)
    target = resolve_target(endpoint, headers)
    sdk = OTLPSpanExporter(endpoint=endpoint, headers=headers)
    client = sdk._client  # the SDK's resolved settings: private, but this is what must not drift apart
    assert target.url == sdk._endpoint
    sent = OtlpHttpSender(target)._headers  # with content-encoding when compressing
    assert sent == {name.lower(): value for name, value in client._headers.items()}
    assert target.timeout == client._timeout
    assert target.compression == client._compression.value
    sdk.shutdown()


def test_bad_compression_and_timeout_fall_back_to_defaults(otlp_env: pytest.MonkeyPatch) -> None:
    otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")
    otlp_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
    target = resolve_target(None, None)
    assert (target.compression, target.timeout) == ("none", 10.0)


def test_what_only_the_sdk_exporter_can_do(otlp_env: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        otlp_env.delenv(name, raising=False)
    otlp_env.setenv("no_proxy", "127.0.0.1")
    otlp_env.setenv("NO_PROXY", "127.0.0.1")
    assert sdk_needed(HttpTarget("http://collector:4318/v1/traces")) is None
    assert sdk_needed(HttpTarget("grpc://collector:4317")) is not None
    otlp_env.setenv("http_proxy", "http://proxy:3128")
    assert "proxy" in (sdk_needed(HttpTarget("http://collector:4318/v1/traces")) or "")
    assert sdk_needed(HttpTarget("http://127.0.0.1:4318/v1/traces")) is None  # no_proxy
    otlp_env.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER", "vault")
    assert "credential" in (sdk_needed(HttpTarget("http://127.0.0.1:4318/v1/traces")) or "")


def test_the_export_process_picks_the_http_sender_for_http_only(otlp_env: pytest.MonkeyPatch) -> None:
    resource = Resource(RESOURCE)

    def settings(exporter: str) -> dict[str, Any]:
        return {"exporter": exporter, "endpoint": "http://127.0.0.1:4318", "headers": None}

    assert _http_export(settings("otlp-http"), resource) is not None
    assert _http_export(settings("otlp"), resource) is not None  # http/protobuf is the default protocol
    assert _http_export(settings("otlp-grpc"), resource) is None
    otlp_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert _http_export(settings("otlp"), resource) is None


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def test_the_sender_delivers_gzipped_requests_with_its_headers(receiver: OtlpReceiver) -> None:
    target = HttpTarget(
        receiver.traces_url, {"content-type": "application/x-protobuf", "x-api-key": "s3cret"}, compression="gzip"
    )
    sender = OtlpHttpSender(target)
    try:
        for i in range(3):  # one kept-alive connection
            assert sender.send(ours([flat_span(f"span {i}", attributes={"i": i})]), 1)
    finally:
        sender.close()
    spans = receiver.wait_for_spans(3)
    assert [(span["name"], span["attributes"]) for span in spans] == [(f"span {i}", {"i": i}) for i in range(3)]
    assert spans[0]["resource"] == RESOURCE
    for request in receiver.requests():
        assert request["headers"]["x-api-key"] == "s3cret"
        assert request["headers"]["content-encoding"] == "gzip"
        assert request["headers"]["content-type"] == "application/x-protobuf"


class _Scripted:
    """An HTTP server answering with scripted statuses (then 200); optionally closing every connection after one
    response without saying so, as a collector dropping idle kept-alive connections does."""

    def __init__(
        self,
        statuses: Sequence[tuple[int, dict[str, str]]] = (),
        *,
        close_silently: bool = False,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                scripted.bodies.append(body)
                status, headers = scripted.statuses.pop(0) if scripted.statuses else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = close_silently

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_retryable_answers_are_retried_after_retry_after() -> None:
    server = _Scripted([(503, {"Retry-After": "0"}), (429, {"Retry-After": "0.1"}), (502, {"Retry-After": "0"})])
    sender = OtlpHttpSender(HttpTarget(server.url, timeout=5.0))
    try:
        body = ours([flat_span()])
        assert sender.send(body, 1)
        assert server.bodies == [body] * 4
    finally:
        sender.close()
        server.close()


def test_a_refused_request_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    server = _Scripted([(400, {})])
    sender = OtlpHttpSender(HttpTarget(server.url))
    try:
        with caplog.at_level(logging.WARNING, logger="mcp_gateway.telemetry.otlp_http"):
            assert not sender.send(ours([flat_span()]), 1)
        assert len(server.bodies) == 1
        (record,) = caplog.records
        assert record.getMessage() == f"OTLP export to {server.url} failed (HTTP 400): 1 span(s) dropped"
    finally:
        sender.close()
        server.close()


def test_a_connection_dropped_by_the_collector_is_reopened_at_once() -> None:
    server = _Scripted(close_silently=True)
    sender = OtlpHttpSender(HttpTarget(server.url, timeout=5.0))
    try:
        started = time.monotonic()
        for _ in range(3):
            assert sender.send(ours([flat_span()]), 1)
        assert time.monotonic() - started < 0.5  # no backoff: the stale connection is retried immediately
        assert len(server.bodies) == 3
    finally:
        sender.close()
        server.close()


def test_an_unreachable_collector_costs_at_most_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connections are refused
    sender = OtlpHttpSender(HttpTarget(f"http://127.0.0.1:{port}/v1/traces", timeout=1.0))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mcp_gateway.telemetry.otlp_http"):
        assert not sender.send(ours([flat_span()]), 2)
    assert time.monotonic() - started < 1.5
    (record,) = caplog.records
    assert "ConnectionRefusedError" in record.getMessage() and "2 span(s) dropped" in record.getMessage()


def test_the_export_process_survives_a_batch_it_cannot_encode(receiver: OtlpReceiver) -> None:
    exporter = PipeSpanExporter("otlp-http", receiver.url, None, Resource(RESOURCE))
    try:
        exporter.send([flat_span(trace_id=1 << 130)])  # too wide for 16 bytes: the whole batch fails
        exporter.send([flat_span("after")])
        (span,) = receiver.wait_for_spans(1)
        assert span["name"] == "after"
    finally:
        exporter.shutdown()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate PEM, key PEM)."""
    return self_signed(tmp_path, "collector")


def test_https_trusts_the_configured_certificate_only(
    otlp_env: pytest.MonkeyPatch, certificate: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server = _Scripted(tls=certificate)
    try:
        otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
        untrusted = OtlpHttpSender(resolve_target(server.url, None))
        with caplog.at_level(logging.WARNING, logger="mcp_gateway.telemetry.otlp_http"):
            assert not untrusted.send(ours([flat_span()]), 1)  # certifi's CAs do not know it
        assert "SSLCertVerificationError" in caplog.records[-1].getMessage()
        otlp_env.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(certificate[0]))
        trusted = OtlpHttpSender(resolve_target(server.url, None))
        assert trusted.send(ours([flat_span()]), 1)
        assert trusted.send(ours([flat_span()]), 1)
        trusted.close()
        assert len(server.bodies) == 2
    finally:
        server.close()
