"""LLM bridge overhead: a chat completion through the gateway against the same local backend called directly.

Starts the replay backend (tests/support/llm_server.py, model `echo`: a small fixed answer, streamed in
four chunks) and a gateway in front of it with API-key auth on, then at concurrency 1 measures, in
alternating rounds so machine noise hits both sides alike:
- whole completions: latency p50/p99, direct and through the gateway;
- streamed completions: time to the first content chunk (TTFT) and to the end, direct and through it.

    .venv/bin/python bench/llm_bench.py [--requests 2000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
KEY = "sk-bench"
BODY = {"model": "echo", "messages": [{"role": "user", "content": "ping"}]}


def _port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _start(argv: list[str], ready: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{argv[:3]} did not start")


def _gateway_config(backend: str, port: int) -> str:
    import hashlib

    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return json.dumps(
        {
            "server": {"port": port, "host": HOST},
            "auth": {"api_keys": [{"sha256": digest, "tenant": "bench", "subject": "bench"}]},
            "llm": {
                "backends": {"local": {"provider": "openai", "base_url": f"{backend}/v1", "api_key": "sk-local"}},
                "models": {"echo": {"targets": [{"backend": "local"}]}},
                "prices": {"echo-1": {"input": 0.1, "output": 0.4}},
            },
        }
    )


async def _whole(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.post(url, json=BODY, headers=headers) as response:
        await response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started


async def _streamed(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    async with session.post(url, json={**BODY, "stream": True}, headers=headers) as response:
        assert response.status == 200, response.status
        async for line in response.content:
            if not first and b'"content":"p' in line:  # the first chunk with answer text
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
        "n": len(ordered),
    }


async def _measure(direct: str, gateway: str, requests: int, rounds: int) -> dict[str, object]:
    per_round = max(1, requests // rounds)
    auth = {"authorization": f"Bearer {KEY}"}
    results: dict[str, list[float]] = {k: [] for k in ("direct", "gateway", "direct_ttft", "gateway_ttft")}
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        targets = [("direct", f"{direct}/v1/chat/completions", {}), ("gateway", f"{gateway}/v1/chat/completions", auth)]
        for _ in range(50):  # warm both paths (connections, caches)
            for _, url, headers in targets:
                await _whole(session, url, headers)
                await _streamed(session, url, headers)
        for _ in range(rounds):
            for name, url, headers in targets:
                for _ in range(per_round):
                    results[name].append(await _whole(session, url, headers))
                for _ in range(per_round // 2):
                    results[f"{name}_ttft"].append((await _streamed(session, url, headers))[0])
    summary = {name: _summary(samples) for name, samples in results.items()}
    summary["added_p50_ms"] = round(summary["gateway"]["p50_ms"] - summary["direct"]["p50_ms"], 3)
    summary["added_ttft_p50_ms"] = round(summary["gateway_ttft"]["p50_ms"] - summary["direct_ttft"]["p50_ms"], 3)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="whole completions per side (streams: half)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backend_port, gateway_port = _port(), _port()
    backend = _start([sys.executable, "-m", "tests.support.llm_server", "--port", str(backend_port)], "ready")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gateway.yaml"
        config.write_text(_gateway_config(f"http://{HOST}:{backend_port}", gateway_port))
        gateway = _start(
            [sys.executable, "-m", "mcp_gateway", "serve", "--config", str(config)], "Application startup complete"
        )
        try:
            summary = asyncio.run(
                _measure(f"http://{HOST}:{backend_port}", f"http://{HOST}:{gateway_port}", args.requests, args.rounds)
            )
        finally:
            gateway.terminate()
            backend.terminate()
            gateway.wait(10)
            backend.wait(10)
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"whole completion, c=1: direct p50 {summary['direct']['p50_ms']} ms (p99 {summary['direct']['p99_ms']}), "
        f"gateway p50 {summary['gateway']['p50_ms']} ms (p99 {summary['gateway']['p99_ms']}): "
        f"+{summary['added_p50_ms']} ms at p50"
    )
    print(
        f"streamed, time to first token: direct p50 {summary['direct_ttft']['p50_ms']} ms, gateway p50 "
        f"{summary['gateway_ttft']['p50_ms']} ms: +{summary['added_ttft_p50_ms']} ms at p50"
    )


if __name__ == "__main__":
    main()
