"""A call leaves no reference cycle behind: what it made is freed by reference counting the moment it ends.

A cycle through a call's objects keeps all of them (the exchange, the call, its result, the HTTP front's
response stream and request cycle) alive until the collector runs, and makes every collection walk them:
one between the telemetry step's lazy span and the exchange cost each traced call ~35 us over HTTP.
"""

from __future__ import annotations

import gc

import pytest

from mcp_gateway.calls import Call, ClientContext, Result
from mcp_gateway.pipeline.exchange import Exchange
from mcp_gateway.version import MODERN_VERSION

from .conftest import LEGACY, MODERN

pytestmark = pytest.mark.anyio

POLICY = """
tenants: ["*"]
default: allow
rules:
  - {name: no-tool-1, effect: deny, targets: {tools: ["up__tool_1"]}}
limits: [{name: some, per: tenant, rate: 100000/minute, concurrency: 50}]
"""
# Kinds of object one call makes: none of them may end up in cyclic garbage.
PER_CALL = (Exchange, Call, Result, ClientContext)


async def _calls(gw, client: ClientContext) -> None:
    await gw.run("tools/call", {"name": "up__tool_0", "arguments": {"x": 1}}, client=client)
    await gw.run("tools/call", {"name": "up__tool_1"}, client=client)  # refused by the policy
    await gw.run("tools/call", {"name": "up__nope"}, client=client)  # unknown
    await gw.run("tools/call", {"name": "up__error"}, client=client)  # the upstream's tool error
    await gw.run("prompts/get", {"name": "up__prompt_0"}, client=client)
    await gw.run("resources/read", {"uri": "up://up__item/0"}, client=client)
    await gw.run("tools/list", {}, client=client)


@pytest.mark.parametrize("upstream_era", ["2026-07-28", "2025-11-25"])
@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
async def test_served_and_refused_calls_leave_no_cyclic_garbage(in_process, era, upstream_era):
    """Both client eras against both upstream eras (a 2026 client and a handshake-era upstream: the MRTR bridge)."""
    client = ClientContext(MODERN_VERSION, {"sampling": {}}) if era == MODERN.protocol_version else LEGACY
    upstream = ("--prompts", "1", "--resources", "1")
    async with in_process(POLICY, upstream=upstream, protocol=upstream_era) as gw:
        await _calls(gw, client)  # warm: caches and lazily built state are made once, not per call
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # the collector keeps what it would free, to be looked at
        try:
            for _ in range(5):
                await _calls(gw, client)
            gc.collect()
            leaked = [type(o).__name__ for o in gc.garbage if isinstance(o, PER_CALL)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert gw.spans.get_finished_spans(), "tracing was on"
    assert leaked == []
