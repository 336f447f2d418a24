"""The pipeline driven in-process: a whole gateway from `build_gateway`, its upstream a real SDK server (the
scripted server) on the SDK's in-memory streams, spans caught by an in-memory exporter. No sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_gateway.assembly import Gateway, build_gateway
from mcp_gateway.auth.principal import Principal
from mcp_gateway.calls import Call, ClientContext
from mcp_gateway.config import GatewayConfig
from mcp_gateway.upstream.transport_memory import MemoryTransport
from mcp_gateway.version import LEGACY_VERSION, META_CAPABILITIES, META_VERSION, MODERN_VERSION
from tests.support.scripted_server import ScriptedServer, parse_args

MODERN = ClientContext(MODERN_VERSION)
LEGACY = ClientContext(LEGACY_VERSION)
ALICE = Principal("eng", "alice", frozenset({"repo:read"}))


class InProcess:
    """A started gateway with its upstream in memory, its spans, and the upstream's record of calls."""

    def __init__(self, gateway: Gateway, spans: InMemorySpanExporter, record: Path) -> None:
        self.gateway = gateway
        self.spans = spans
        self.record = record

    async def run(self, method: str, params: dict[str, Any] | None = None, **fields: Any) -> Any:
        call = Call(method, params or {}, fields.pop("client", MODERN), fields.pop("principal", ALICE), 1, **fields)
        return await self.gateway.pipeline.run(call)

    def upstream_calls(self, method: str = "tools/call") -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        lines = [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]
        return [line for line in lines if line.get("method") == method]


@pytest.fixture
def in_process(tmp_path: Path) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(
        policy: str | None = None, *, upstream: tuple[str, ...] = (), protocol: str = "auto", **config: Any
    ) -> AsyncIterator[InProcess]:
        record = tmp_path / "upstream.jsonl"
        scripted = ScriptedServer(
            parse_args(["--transport", "stdio", "--name", "up", "--record", str(record), *upstream])
        )
        server = scripted.server

        async def serve(read: Any, write: Any) -> None:
            await server.run(read, write, server.create_initialization_options())

        if policy is not None:
            (tmp_path / "policies").mkdir(exist_ok=True)
            (tmp_path / "policies" / "policy.yaml").write_text(policy)
            config.setdefault("policies", {"dir": str(tmp_path / "policies"), "reload": False})
        upstream_config = {"transport": "stdio", "command": "in-process", "protocol": protocol}
        upstream_config.update(config.pop("upstream_config", {}))
        settings = GatewayConfig.model_validate({**config, "upstreams": {"up": upstream_config}})
        spans = InMemorySpanExporter()
        gateway = build_gateway(
            settings,
            prometheus=False,
            connect=lambda name, _config, _base: MemoryTransport(name, serve),
            span_processors=[SimpleSpanProcessor(spans)],
        )
        await gateway.start()
        try:
            yield InProcess(gateway, spans, record)
        finally:
            await gateway.stop()

    return start


def modern_params(**params: Any) -> dict[str, Any]:
    """Params with the 2026-07-28 envelope (the pipeline reads the client from the Call, not from here)."""
    return {**params, "_meta": {META_VERSION: MODERN_VERSION, META_CAPABILITIES: {}}}
