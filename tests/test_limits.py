"""Policy limits: a request rate (GCRA) and concurrent calls, exact under concurrency, in one process
and shared by two processes through a real Redis."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.processes import read_records
from tests.support.wire import envelope, modern_headers

pytestmark = pytest.mark.anyio

POLICY = """
tenants: ["*"]
default: allow
limits:
  - name: {name}
    per: tenant
{limit}
"""


def _policy(tmp_path, name: str, limit: str):
    directory = tmp_path / "policies"
    directory.mkdir(exist_ok=True)
    (directory / "limits.yaml").write_text(POLICY.format(name=name, limit=limit))
    return str(directory)


async def _burst(urls: list[str], count: int, tool: str, arguments: dict) -> list[dict]:
    """`count` concurrent tools/call, spread over `urls`; the JSON-RPC answers."""

    async def one(client: httpx.AsyncClient, url: str, n: int) -> dict:
        params = {"name": tool, "arguments": arguments, "_meta": envelope()}
        body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}
        response = await client.post(url, content=json.dumps(body), headers=modern_headers("tools/call", params))
        lines = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(lines[-1]) if lines else response.json()

    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(one(client, urls[n % len(urls)], n) for n in range(count)))


def _limited(upstreams, gateway, tmp_path, name: str, limit: str, processes: int = 1, state: dict | None = None):
    """Gateway process(es) in front of one recording upstream, under one limit; (urls, record)."""
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "1", "--record", str(record))
    config: dict = {
        "policies": {"dir": _policy(tmp_path, name, limit)},
        "upstreams": {"up": {"transport": "streamable_http", "url": url}},
    }
    if state is not None:
        config |= {"state": state, "server": {"session_secret": "shared between the processes"}}
    return [gateway(config, upstreams_ready=1).url for _ in range(processes)], record


def _calls(record, tool: str) -> int:
    return sum(1 for r in read_records(record) if r.get("method") == "tools/call" and r.get("name") == tool)


async def test_n_concurrent_calls_against_a_rate_of_k_admit_exactly_k(upstreams, gateway, tmp_path):
    urls, record = _limited(upstreams, gateway, tmp_path, "five-a-minute", '    rate: "5/minute"')
    answers = await _burst(urls, 20, "up__tool_0", {})
    admitted = [a for a in answers if "result" in a]
    limited = [a for a in answers if "error" in a]
    assert len(admitted) == 5 and _calls(record, "tool_0") == 5
    assert len(limited) == 15
    error = limited[0]["error"]
    assert error["code"] == -32005 and "five-a-minute" in error["message"]
    assert error["data"]["limit"] == "five-a-minute" and 1 <= error["data"]["retryAfterSeconds"] <= 12


async def test_two_processes_on_redis_share_one_rate(upstreams, gateway, tmp_path, redis_state):
    limit = '    rate: "5/minute"'
    urls, record = _limited(upstreams, gateway, tmp_path, "five-a-minute", limit, processes=2, state=redis_state)
    answers = await _burst(urls, 20, "up__tool_0", {})
    assert sum("result" in x for x in answers) == 5
    assert _calls(record, "tool_0") == 5


async def test_concurrent_calls_beyond_the_limit_are_refused_until_one_ends(upstreams, gateway, tmp_path):
    urls, record = _limited(upstreams, gateway, tmp_path, "two-at-once", "    concurrency: 2")
    answers = await _burst(urls, 6, "up__sleep", {"seconds": 0.5})
    assert sum("result" in a for a in answers) == 2
    assert _calls(record, "sleep") == 2
    # The slots were given back: the next calls are admitted again.
    again = await _burst(urls, 2, "up__sleep", {"seconds": 0.1})
    assert all("result" in a for a in again)
