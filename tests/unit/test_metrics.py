"""Gateway metrics: semconv names, units, buckets and attributes on /metrics and on OTel; sums over worker processes."""

from __future__ import annotations

import glob
import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mcp_gateway import serving
from mcp_gateway.telemetry import metrics as metrics_module
from mcp_gateway.telemetry.metrics import Metrics, provider_name

ROOT = Path(__file__).resolve().parents[2]
ENV = "PROMETHEUS_MULTIPROC_DIR"

# The advised buckets, copied from the reference rather than from the module, so a typo in either one shows.
MCP_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]

GEN_AI_LABELS = {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"}
MCP_LABELS = {"mcp_method_name", "gen_ai_operation_name", "gen_ai_tool_name", "gen_ai_prompt_name", "error_type"}
MCP_LABELS |= {"mcp_protocol_version"}
# Prometheus family -> (OTel name, OTel unit, buckets, label names)
FAMILIES: dict[str, tuple[str, str, list[float], set[str]]] = {
    "mcp_server_operation_duration_seconds": (
        "mcp.server.operation.duration",
        "s",
        MCP_BUCKETS,
        MCP_LABELS | {"network_transport", "tenant", "upstream"},
    ),
    "mcp_client_operation_duration_seconds": (
        "mcp.client.operation.duration",
        "s",
        MCP_BUCKETS,
        MCP_LABELS | {"upstream"},
    ),
    "gen_ai_client_operation_duration_seconds": (
        "gen_ai.client.operation.duration",
        "s",
        DURATION_BUCKETS,
        GEN_AI_LABELS | {"error_type", "tenant", "backend"},
    ),
    "gen_ai_server_request_duration_seconds": (
        "gen_ai.server.request.duration",
        "s",
        DURATION_BUCKETS,
        GEN_AI_LABELS | {"error_type", "tenant", "backend"},
    ),
    "gen_ai_client_token_usage": (
        "gen_ai.client.token.usage",
        "{token}",
        TOKEN_BUCKETS,
        GEN_AI_LABELS | {"gen_ai_token_type", "tenant", "backend"},
    ),
    "gen_ai_server_time_to_first_token_seconds": (
        "gen_ai.server.time_to_first_token",
        "s",
        TTFT_BUCKETS,
        GEN_AI_LABELS | {"tenant", "backend"},
    ),
    "gen_ai_server_time_per_output_token_seconds": (
        "gen_ai.server.time_per_output_token",
        "s",
        TPOT_BUCKETS,
        GEN_AI_LABELS | {"tenant", "backend"},
    ),
}

TOOL_CALL: dict[str, Any] = {
    "method": "tools/call",
    "target": "search",
    "protocol_version": "2025-11-25",
    "transport": "tcp",
    "tenant": "acme",
    "upstream": "gh",
}
CHAT: dict[str, Any] = {
    "operation": "chat",
    "provider": "openai",
    "request_model": "gpt-4o",
    "response_model": "gpt-4o-2024-08-06",
    "tenant": "acme",
    "backend": "primary",
}
CHAT_OK: dict[str, Any] = {
    **CHAT,
    "duration": 1.5,
    "error_type": None,
    "input_tokens": 100,
    "output_tokens": 20,
    "time_to_first_token": 0.3,
    "time_per_output_token": 0.05,
}


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def record_mix(metrics: Metrics) -> None:
    metrics.mcp_server(0.03, **TOOL_CALL, error_type=None)
    metrics.mcp_server(0.5, **TOOL_CALL, error_type="tool_error")
    metrics.mcp_server(
        0.015, method="prompts/get", target="greet", error_type=None, protocol_version="2025-11-25",
        transport="tcp", tenant="acme", upstream="gh",
    )  # fmt: skip
    metrics.mcp_server(
        0.004, method="resources/read", target="file:///etc/hosts", error_type=None, protocol_version=None,
        transport="pipe", tenant="acme", upstream="fs",
    )  # fmt: skip
    metrics.mcp_server(
        0.002, method="tools/list", target=None, error_type=None, protocol_version="2026-07-28",
        transport="tcp", tenant="beta", upstream=None,
    )  # fmt: skip
    metrics.mcp_client(
        0.4, method="tools/call", target="search", error_type="-32603", protocol_version="2025-11-25", upstream="gh"
    )
    metrics.llm(**CHAT_OK)
    metrics.llm(
        operation="chat", provider="bedrock", request_model="claude", response_model=None, duration=0.2,
        error_type="RateLimitError", input_tokens=None, output_tokens=None, time_to_first_token=0.1,
        time_per_output_token=None, tenant="acme", backend="aws",
    )  # fmt: skip


# --- Prometheus ---------------------------------------------------------------------------------------------------


def families(metrics: Metrics) -> dict[str, Any]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def samples(family: Any, suffix: str, **labels: str) -> list[Sample]:
    return [
        sample
        for sample in family.samples
        if sample.name == family.name + suffix and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def total(family: Any, suffix: str, **labels: str) -> float:
    return sum(sample.value for sample in samples(family, suffix, **labels))


def test_prometheus_families_labels_and_buckets_follow_the_conventions():
    metrics = Metrics()
    record_mix(metrics)
    body, _ = metrics.render()
    found = families(metrics)
    assert set(found) == set(FAMILIES)
    assert b"_created" not in body
    for name, (_, _, buckets, labels) in FAMILIES.items():
        family = found[name]
        assert family.type == "histogram"
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, name
        for count in samples(family, "_count"):
            les = [float(s.labels["le"]) for s in samples(family, "_bucket", **count.labels)]
            assert les == [*map(float, buckets), float("inf")], name


def test_prometheus_mcp_counts_sums_and_targets():
    metrics = Metrics()
    record_mix(metrics)
    server = families(metrics)["mcp_server_operation_duration_seconds"]
    ok = {"mcp_method_name": "tools/call", "gen_ai_tool_name": "search", "error_type": ""}
    assert total(server, "_count", **ok) == 1
    assert total(server, "_sum", **ok) == pytest.approx(0.03)
    assert total(server, "_bucket", le="0.02", **ok) == 0
    assert total(server, "_bucket", le="0.05", **ok) == 1
    failed = {**ok, "error_type": "tool_error"}
    assert total(server, "_count", **failed) == 1
    assert total(server, "_sum", **failed) == pytest.approx(0.5)
    assert {s.labels["gen_ai_operation_name"] for s in samples(server, "_count", mcp_method_name="tools/call")} == {
        "execute_tool"
    }
    prompt = samples(server, "_count", mcp_method_name="prompts/get")
    assert [(s.labels["gen_ai_prompt_name"], s.labels["gen_ai_tool_name"], s.value) for s in prompt] == [
        ("greet", "", 1)
    ]
    listing = samples(server, "_count", mcp_method_name="tools/list")
    assert listing[0].labels["gen_ai_operation_name"] == "" and listing[0].labels["tenant"] == "beta"
    # A resource URI never becomes a label value.
    assert all("file:" not in value for s in server.samples for value in s.labels.values())
    assert total(server, "_count", mcp_method_name="resources/read", network_transport="pipe") == 1
    client = families(metrics)["mcp_client_operation_duration_seconds"]
    assert [(s.labels["error_type"], s.labels["upstream"], s.value) for s in samples(client, "_count")] == [
        ("-32603", "gh", 1)
    ]


def test_prometheus_llm_durations_tokens_and_server_timings():
    metrics = Metrics()
    record_mix(metrics)
    found = families(metrics)
    for name in ("gen_ai_client_operation_duration_seconds", "gen_ai_server_request_duration_seconds"):
        family = found[name]
        assert total(family, "_count", gen_ai_provider_name="openai", error_type="") == 1
        assert total(family, "_sum", gen_ai_response_model="gpt-4o-2024-08-06") == pytest.approx(1.5)
        failed = samples(family, "_count", error_type="RateLimitError")
        assert [(s.labels["gen_ai_provider_name"], s.labels["gen_ai_request_model"], s.value) for s in failed] == [
            ("aws.bedrock", "claude", 1)
        ]
    tokens = found["gen_ai_client_token_usage"]
    assert total(tokens, "_sum", gen_ai_token_type="input") == 100
    assert total(tokens, "_sum", gen_ai_token_type="output") == 20
    assert total(tokens, "_count") == 2  # the failed call reported no usage
    assert total(tokens, "_bucket", le="64.0", gen_ai_token_type="output") == 1
    # TTFT/TPOT are for successful responses: the failed call's 0.1 s TTFT is not recorded.
    ttft = found["gen_ai_server_time_to_first_token_seconds"]
    assert total(ttft, "_count") == 1 and total(ttft, "_sum") == pytest.approx(0.3)
    assert total(found["gen_ai_server_time_per_output_token_seconds"], "_sum", backend="primary") == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("openai", "openai"),
        ("azure", "azure.ai.openai"),
        ("anthropic", "anthropic"),
        ("bedrock", "aws.bedrock"),
        ("gemini", "gcp.gemini"),
        ("vertex", "gcp.vertex_ai"),
        ("mistral_ai", "mistral_ai"),
        (None, None),
    ],
)
def test_provider_names_use_the_semconv_spelling(kind: str | None, name: str | None):
    assert provider_name(kind) == name


def test_label_sets_past_the_limit_fold_into_one_series(monkeypatch: pytest.MonkeyPatch, caplog: Any):
    monkeypatch.setattr(metrics_module, "_MAX_SERIES", 3)
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        for tool in ("a", "b", "c", "made-up-1", "made-up-2", "a"):
            metrics.mcp_server(0.01, **{**TOOL_CALL, "target": tool}, error_type="-32602")
    server = families(metrics)["mcp_server_operation_duration_seconds"]
    counts = {s.labels["gen_ai_tool_name"]: s.value for s in samples(server, "_count")}
    assert counts == {"a": 2, "b": 1, "c": 1, "_OTHER": 2}
    assert len([r for r in caplog.records if "_OTHER" in r.getMessage()]) == 1


def test_prometheus_off_renders_nothing_and_records_cheaply():
    metrics = Metrics(prometheus=False)
    record_mix(metrics)
    assert metrics.render()[0] == b""


# --- OpenTelemetry ------------------------------------------------------------------------------------------------


def otel_metrics(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    assert data is not None
    scopes = [scope for resource in data.resource_metrics for scope in resource.scope_metrics]
    assert {scope.scope.name for scope in scopes} == {"mcp_gateway"}
    return {metric.name: metric for scope in scopes for metric in scope.metrics}


def points(metric: Any, **attributes: str | None) -> list[Any]:
    """Data points with these attribute values; None means the attribute is absent."""
    return [p for p in metric.data.data_points if all(p.attributes.get(k) == v for k, v in attributes.items())]


def test_otel_instruments_units_buckets_and_attributes():
    reader = InMemoryMetricReader()
    record_mix(Metrics(prometheus=False, meter_provider=MeterProvider(metric_readers=[reader])))
    found = otel_metrics(reader)
    assert set(found) == {otel_name for otel_name, _, _, _ in FAMILIES.values()}
    for otel_name, unit, buckets, _ in FAMILIES.values():
        metric = found[otel_name]
        assert metric.unit == unit
        assert all(list(p.explicit_bounds) == buckets for p in metric.data.data_points), otel_name

    server = found["mcp.server.operation.duration"]
    (ok,) = points(server, **{"mcp.method.name": "tools/call", "error.type": None})
    (failed,) = points(server, **{"error.type": "tool_error"})
    assert dict(ok.attributes) == {
        "mcp.method.name": "tools/call",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "mcp.protocol.version": "2025-11-25",
        "network.transport": "tcp",
        "tenant": "acme",
        "upstream": "gh",
    }
    assert dict(failed.attributes) == {**ok.attributes, "error.type": "tool_error"}
    assert (ok.count, ok.sum) == (1, pytest.approx(0.03))
    (listing,) = points(server, **{"mcp.method.name": "tools/list"})
    assert dict(listing.attributes) == {
        "mcp.method.name": "tools/list",
        "mcp.protocol.version": "2026-07-28",
        "network.transport": "tcp",
        "tenant": "beta",
    }
    (resource,) = points(server, **{"mcp.method.name": "resources/read"})
    assert "file:///etc/hosts" not in resource.attributes.values()

    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "tenant": "acme",
        "backend": "primary",
    }
    for name in ("gen_ai.client.operation.duration", "gen_ai.server.request.duration"):
        durations = {p.attributes.get("error.type"): p for p in found[name].data.data_points}
        assert dict(durations[None].attributes) == chat
        assert durations["RateLimitError"].attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert "gen_ai.response.model" not in durations["RateLimitError"].attributes
    tokens = {p.attributes["gen_ai.token.type"]: p for p in found["gen_ai.client.token.usage"].data.data_points}
    assert dict(tokens["input"].attributes) == {**chat, "gen_ai.token.type": "input"}
    assert (tokens["input"].sum, tokens["output"].sum) == (100, 20)
    (ttft,) = found["gen_ai.server.time_to_first_token"].data.data_points
    assert dict(ttft.attributes) == chat and ttft.count == 1


def test_one_record_reaches_both_prometheus_and_otel():
    reader = InMemoryMetricReader()
    metrics = Metrics(meter_provider=MeterProvider(metric_readers=[reader]))
    for _ in range(3):
        metrics.llm(**CHAT_OK)
    assert total(families(metrics)["gen_ai_client_token_usage"], "_sum") == 3 * 120
    assert sum(p.sum for p in otel_metrics(reader)["gen_ai.client.token.usage"].data.data_points) == 3 * 120


# --- Several worker processes -------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from mcp_gateway.telemetry.metrics import Metrics

    metrics = Metrics()
    for _ in range(int(sys.argv[1])):
        metrics.mcp_server(0.03, method="tools/call", target="search", error_type=None, protocol_version="2025-11-25",
                           transport="tcp", tenant="acme", upstream="gh")
        metrics.llm(operation="chat", provider="openai", request_model="gpt-4o", response_model="gpt-4o",
                    duration=1.5, error_type=None, input_tokens=100, output_tokens=20, time_to_first_token=0.3,
                    time_per_output_token=0.05, tenant="acme", backend="primary")
        metrics.mcp_client(0.2, method="initialize", target=None, error_type=None, protocol_version="2025-11-25",
                           upstream="gh")
    if sys.argv[2:] == ["render"]:
        sys.stdout.buffer.write(metrics.render()[0])
    """
)


def run_worker(directory: Path, count: int, *args: str) -> bytes:
    env = {**os.environ, ENV: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(count), *args], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"WARNING" not in done.stderr
    return done.stdout


def assert_sums_of_eight(found: dict[str, Any]) -> None:
    assert set(found) == set(FAMILIES)
    server = found["mcp_server_operation_duration_seconds"]
    assert total(server, "_count", gen_ai_tool_name="search") == 8
    assert total(server, "_sum") == pytest.approx(8 * 0.03)
    assert total(server, "_bucket", le="0.05") == 8 and total(server, "_bucket", le="0.02") == 0
    les = [float(s.labels["le"]) for s in samples(server, "_bucket")]
    assert les == [*map(float, MCP_BUCKETS), float("inf")]
    assert total(found["gen_ai_client_token_usage"], "_sum", gen_ai_token_type="input") == 800
    assert total(found["gen_ai_server_time_to_first_token_seconds"], "_count") == 8
    assert total(found["mcp_client_operation_duration_seconds"], "_count", mcp_method_name="initialize") == 8


def test_a_render_sums_every_worker_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any):
    run_worker(tmp_path, 3)
    # The second worker's render is a scrape that reached it: its own values once, plus the first worker's.
    scraped = run_worker(tmp_path, 5, "render")
    assert len(glob.glob(str(tmp_path / "histogram_*.db"))) == 2  # one file per process
    assert b"_created" not in scraped
    assert_sums_of_eight({family.name: family for family in text_string_to_metric_families(scraped.decode())})

    monkeypatch.setenv(ENV, str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        found = families(Metrics())  # this process records nothing: it only reads the workers' files
    assert not caplog.records
    assert_sums_of_eight(found)


def test_a_process_that_imported_prometheus_client_too_early_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
):
    monkeypatch.setenv(ENV, str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MutexValue)  # as if imported before the variable was set
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        metrics.mcp_server(0.03, **TOOL_CALL, error_type=None)
        metrics.mcp_server(0.03, **TOOL_CALL, error_type="tool_error")
    assert len([r for r in caplog.records if ENV in r.getMessage()]) == 1


def spawned_worker(count: int) -> None:
    """A stand-in for `serving._worker_main`: a spawned process that records and exits."""
    metrics = Metrics()
    for _ in range(count):
        metrics.mcp_server(0.03, **TOOL_CALL, error_type=None)


def test_serving_gives_spawned_workers_one_fresh_metrics_directory():
    with serving.shared_metrics_dir() as path:
        assert os.environ[ENV] == path and os.listdir(path) == []
        context = multiprocessing.get_context("spawn")  # as serve_workers starts its workers
        workers = [context.Process(target=spawned_worker, args=(n,)) for n in (2, 5)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
            serving._forget_worker(worker.pid)
        server = families(Metrics())["mcp_server_operation_duration_seconds"]
        assert total(server, "_count") == 7  # a dead worker's counts stay in the sums
    assert not os.path.exists(path)
    assert ENV not in os.environ
