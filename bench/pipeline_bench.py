"""What each step of the pipeline costs a `tools/call`, measured in-process without sockets.

    python bench/pipeline_bench.py [--calls N] [--rounds R]

A whole gateway from `build_gateway`, its one upstream an in-process echo (a transport that answers at once,
no JSON, no I/O), driven through `pipeline.run` in a loop: the time per call is what the gateway's own code
costs, without uvicorn, the upstream client or the network, so the configurations can be compared closely.
Configurations: bare, policy (the realistic 100-rule policy of run.py, a CEL condition on every call),
tracing (lean spans through the export process to bench/otlp_sink.py, which discards), and everything on.
The export process runs beside, as when serving: its CPU is not counted here (`process_time` is this
one's). Each is run `--rounds`
times, and the minimum is reported (the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import start_otlp_receiver
from run import write_policy

from mcp_gateway.assembly import build_gateway
from mcp_gateway.auth.principal import Principal
from mcp_gateway.calls import Call, ClientContext
from mcp_gateway.config import GatewayConfig
from mcp_gateway.upstream.transport import StreamTransport

TOOL = {
    "name": "echo",
    "description": "Echo the text",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


class EchoTransport(StreamTransport):
    """An upstream in this process: `initialize`, `tools/list` with one tool, `tools/call` echoing."""

    async def start(self) -> None:
        return None

    async def _write(self, message: dict[str, Any]) -> None:
        if "id" not in message:
            return
        method = message.get("method")
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "echo", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": [TOOL]}
        elif method == "tools/call":
            text = (message["params"].get("arguments") or {}).get("text", "")
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            await self._answer({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}})
            return
        await self._answer({"jsonrpc": "2.0", "id": message["id"], "result": result})

    async def _answer(self, response: dict[str, Any]) -> None:
        self._pending.resolve(response)

    async def aclose(self) -> None:
        self.mark_lost("closed")


async def measure(config: dict[str, Any], calls: int) -> float:
    settings = GatewayConfig.model_validate(config)
    gateway = build_gateway(settings, prometheus=True, connect=lambda name, _config, _base: EchoTransport(name))
    await gateway.start()
    principal = Principal("bench", "bench-user", frozenset({"mcp:tools"}))
    client = ClientContext("2025-11-25", session_id="bench-session-id")
    params = {"name": "echo", "arguments": {"text": "hello"}}
    try:
        for _ in range(500):  # warm caches (policy plans, metric series)
            await gateway.pipeline.run(Call("tools/call", dict(params), client, principal, 1))
        gc.collect()
        gc.freeze()  # as the serving process does after start (app.py): long-lived objects out of the collector's way
        started = time.process_time()
        for i in range(calls):
            result = await gateway.pipeline.run(Call("tools/call", dict(params), client, principal, i))
            assert result.error is None, result.error
        return (time.process_time() - started) / calls * 1e6
    finally:
        await gateway.stop()
        gc.unfreeze()


def configs(workdir: Path, sink: str) -> dict[str, dict[str, Any]]:
    upstream = {"echo": {"transport": "stdio", "command": "in-process", "prefixing": False, "protocol": "2025-11-25"}}
    policy = {"dir": str(write_policy(workdir)), "reload": False}
    tracing = {"tracing": {"exporter": "otlp-http", "endpoint": sink}}  # the export process sends there
    return {
        "bare": {"upstreams": upstream},
        "policy": {"upstreams": upstream, "policies": policy},
        "tracing": {"upstreams": upstream, "telemetry": tracing},
        "all on": {"upstreams": upstream, "policies": policy, "telemetry": {**tracing, "access_log": os.devnull}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        sink, url = start_otlp_receiver(Path(tmp))  # a collector stand-in that discards
        results: dict[str, list[float]] = {}
        try:
            for _ in range(args.rounds):
                for name, config in configs(Path(tmp), url).items():
                    results.setdefault(name, []).append(asyncio.run(measure(config, args.calls)))
        finally:
            sink.stop()
    bare = min(results["bare"])
    print(f"tools/call through pipeline.run, CPU us per call (min of {args.rounds} rounds of {args.calls}):")
    for name, values in results.items():
        best = min(values)
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name:<8} {best:7.1f} us   (+{best - bare:5.1f} over bare)   rounds: {rounds}")


if __name__ == "__main__":
    main()
