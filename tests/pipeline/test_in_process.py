"""The core without sockets: every step of the pipeline, observed on the `Result` it returns."""

from __future__ import annotations

import asyncio

import pytest

from mcp_gateway.calls import ClientContext, ScopeRefusal
from mcp_gateway.jsonrpc import INVALID_PARAMS, RATE_LIMITED
from mcp_gateway.version import MODERN_VERSION

from .conftest import ALICE, LEGACY

pytestmark = pytest.mark.anyio

DENY_DELETE = """
tenants: ["*"]
default: allow
rules:
  - {name: no-secret-tool, effect: deny, targets: {tools: ["up__tool_1"]}}
  - name: small-only
    effect: deny
    targets: {tools: ["up__tool_2"]}
    condition: 'has(args.size) && args.size > 10'
    message: "Only small sizes."
  - {name: no-private, effect: deny, targets: {resources: ["up://up__item/private/*"]}}
"""


async def test_the_chain_is_assembled_once_in_order(in_process):
    async with in_process(DENY_DELETE) as gw:
        names = [step.name for step in gw.gateway.pipeline.steps]
    assert names == ["telemetry", "route", "policy", "limits"]  # no scopes configured: no scopes step


async def test_a_call_returns_what_happened(in_process):
    async with in_process() as gw:
        result = await gw.run("tools/call", {"name": "up__tool_0", "arguments": {"x": 1}})
        assert result.error is None and result.upstream == "up" and result.target == "up__tool_0"
        assert result.payload["resultType"] == "complete"  # a 2026-07-28 client's result says what it is
        assert result.upstream_duration is not None and 0 < result.upstream_duration <= result.duration
        assert result.trace_id is not None
        [span] = [s for s in gw.spans.get_finished_spans() if s.name == "tools/call up__tool_0"]
        assert format(span.context.trace_id, "032x") == result.trace_id
        assert span.attributes["input.value"] == '{"x":1}'
        assert gw.upstream_calls()[0]["name"] == "tool_0"  # the upstream's own name


async def test_policy_hides_and_refuses_the_same_way_for_lists_and_calls(in_process):
    async with in_process(DENY_DELETE) as gw:
        listed = await gw.run("tools/list")
        names = {tool["name"] for tool in listed.payload["tools"]}
        assert "up__tool_0" in names and "up__tool_1" not in names and "up__tool_2" in names
        hidden = await gw.run("tools/call", {"name": "up__tool_1", "arguments": {}})
        assert hidden.error is not None and hidden.error.code == INVALID_PARAMS
        assert hidden.error.message == "Unknown tool: up__tool_1"  # as if it did not exist
        refused = await gw.run("tools/call", {"name": "up__tool_2", "arguments": {"size": 11}})
        assert refused.payload["isError"] is True and "small-only" in refused.payload["content"][0]["text"]
        allowed = await gw.run("tools/call", {"name": "up__tool_2", "arguments": {"size": 3}})
        assert allowed.error is None and allowed.payload.get("isError") is not True
        assert [c["name"] for c in gw.upstream_calls()] == ["tool_2"]  # refusals never reached the upstream
        # The refused calls' spans still hold what the client sent.
        spans = gw.spans.get_finished_spans()
        [unknown] = [s for s in spans if s.name == "tools/call up__tool_1"]
        assert unknown.attributes["input.value"] == "{}"
        refused_span, allowed_span = [s for s in spans if s.name == "tools/call up__tool_2"]
        assert refused_span.attributes["error.type"] == "tool_error"
        assert refused_span.attributes["input.value"] == '{"size":11}'
        assert "error.type" not in allowed_span.attributes


async def test_resource_uris_are_decided_and_forwarded_in_one_canonical_spelling(in_process):
    async with in_process(DENY_DELETE, upstream=("--resources", "1")) as gw:
        spellings = (
            "up://up__item/private/x",
            "up://up__item/public/../private/x",
            "up://up__item/public/%2e%2e/private/x",
            "up://up__item/./private/x",
            "up://up__item/%70rivate/x",
            "UP://up__item/private/x",
        )
        for sneaky in spellings:
            result = await gw.run("resources/read", {"uri": sneaky})
            assert result.error is not None and result.error.code == INVALID_PARAMS, sneaky
            assert result.error.data["uri"] == "up://up__item/private/x"  # the one spelling the policy decided on
        for ambiguous in ("up://up__item/public/..%2Fprivate/x", "up://up__item/public\\..\\private/x"):
            result = await gw.run("resources/read", {"uri": ambiguous})
            assert result.error is not None and result.error.code == INVALID_PARAMS, ambiguous
        assert gw.upstream_calls("resources/read") == []
        served = await gw.run("resources/read", {"uri": "up://up__item/public/../0"})
        assert served.error is None and served.payload["contents"][0]["uri"] == "up://up__item/0"
        assert [r["uri"] for r in gw.upstream_calls("resources/read")] == ["up://item/0"]


async def test_a_rate_limit_admits_exactly_its_rate(in_process):
    policy = 'tenants: ["*"]\ndefault: allow\nlimits: [{name: three, per: tenant, rate: "3/minute"}]\n'
    async with in_process(policy) as gw:
        results = await asyncio.gather(*(gw.run("tools/call", {"name": "up__tool_0"}) for _ in range(8)))
    refused = [r for r in results if r.error is not None]
    assert len(refused) == 5 and all(r.error.code == RATE_LIMITED for r in refused)
    assert refused[0].error.data["limit"] == "three"


async def test_a_call_parked_on_input_required_holds_its_concurrency_slot(in_process):
    policy = 'tenants: ["*"]\ndefault: allow\nlimits: [{name: one-at-a-time, per: tenant, concurrency: 1}]\n'
    sampling = ClientContext(MODERN_VERSION, {"sampling": {}})
    async with in_process(policy, protocol="2025-11-25") as gw:
        parked = await gw.run("tools/call", {"name": "up__sample", "arguments": {"prompt": "hi"}}, client=sampling)
        assert parked.payload["resultType"] == "input_required"
        # The upstream call waits for the client's answer: it still counts as the one call in flight.
        other = await gw.run("tools/call", {"name": "up__tool_0"}, client=sampling)
        assert other.error is not None and other.error.code == RATE_LIMITED
        [key] = parked.payload["inputRequests"]
        answer = {
            "role": "assistant",
            "content": {"type": "text", "text": "yes"},
            "model": "m",
            "stopReason": "endTurn",
        }
        retry = {
            "name": "up__sample",
            "arguments": {"prompt": "hi"},
            "inputResponses": {key: answer},
            "requestState": parked.payload["requestState"],
        }
        done = await gw.run("tools/call", retry, client=sampling)  # the retry resumes it: not limited
        assert done.error is None and "yes" in done.payload["content"][0]["text"]
        await asyncio.sleep(0.05)
        again = await gw.run("tools/call", {"name": "up__tool_0"}, client=sampling)
        assert again.error is None  # the slot came back when the parked call ended


async def test_a_tool_the_policy_hides_stays_unknown_even_when_it_needs_scopes(in_process):
    config = {"upstream_config": {"tool_scopes": {"tool_*": ["repo:write"]}}}
    async with in_process(DENY_DELETE, **config) as gw:
        assert [step.name for step in gw.gateway.pipeline.steps][2:4] == ["policy", "scopes"]
        hidden = await gw.run("tools/call", {"name": "up__tool_1"})
        assert hidden.error.message == "Unknown tool: up__tool_1"  # not a 403 naming the scope it needs
        visible = await gw.run("tools/call", {"name": "up__tool_0"})
        assert isinstance(visible.error, ScopeRefusal) and visible.error.scopes == {"repo:write"}
        writer = ALICE.__class__("eng", "bob", frozenset({"repo:write"}))
        assert (await gw.run("tools/call", {"name": "up__tool_0"}, principal=writer)).error is None


async def test_handshake_era_calls_take_the_same_steps(in_process):
    async with in_process(DENY_DELETE) as gw:
        hidden = await gw.run("tools/call", {"name": "up__tool_1"}, client=LEGACY)
        assert hidden.error.message == "Unknown tool: up__tool_1"
        listed = await gw.run("tools/list", client=LEGACY)
        assert "resultType" not in listed.payload  # the handshake era has none
        assert "up__tool_1" not in {tool["name"] for tool in listed.payload["tools"]}
