"""Per-tenant policy files enforced at the message layer: what each tenant lists and may call, hot
reload, `policy explain` agreeing with the gateway, and a property test over generated policies."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ROOT, read_records
from tests.support.wire import final_message, modern_post

KEYS = {"engineering": "mgw_eng_key", "support": "mgw_support_key"}
TOOLS = ("get_issue", "list_issues", "create_issue", "delete_repo")


def _api_keys() -> list[dict]:
    return [
        {
            "sha256": hashlib.sha256(key.encode()).hexdigest(),
            "tenant": tenant,
            "subject": f"{tenant}-user",
            "scopes": ["repo:write"] if tenant == "engineering" else [],
        }
        for tenant, key in KEYS.items()
    ]


@pytest.fixture
def governed(upstreams, gateway, tmp_path):
    """A gateway enforcing a copy of the shipped example policies, in front of a GitHub-like upstream."""
    policy_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    record = tmp_path / "github.jsonl"
    names = [arg for tool in TOOLS for arg in ("--tool-name", tool)]
    _, url = upstreams("--name", "github", "--tools", "0", "--no-special-tools", *names, "--record", str(record))
    gw = gateway(
        {
            "auth": {"api_keys": _api_keys()},
            "policies": {"dir": str(policy_dir)},
            "upstreams": {"github": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
    )
    return gw, record, policy_dir


def _as(tenant: str) -> dict[str, str]:
    return {"x-api-key": KEYS[tenant]}


def _tools(gw, tenant: str) -> set[str]:
    return {t["name"] for t in modern_post(gw.url, "tools/list", headers=_as(tenant)).json()["result"]["tools"]}


def _call(gw, tenant: str, tool: str, arguments: dict) -> httpx.Response:
    return modern_post(gw.url, "tools/call", {"name": tool, "arguments": arguments}, headers=_as(tenant))


def _calls_upstream(record) -> list[dict]:
    return [r for r in read_records(record) if r.get("method") == "tools/call"]


def test_each_tenant_lists_and_calls_only_what_its_policy_allows(governed):
    gw, record, _ = governed
    assert _tools(gw, "engineering") == {"github__get_issue", "github__list_issues", "github__create_issue"}
    assert _tools(gw, "support") == {"github__get_issue", "github__list_issues"}

    allowed = final_message(_call(gw, "engineering", "github__create_issue", {"repo": "acme/web"}))["result"]
    assert allowed["isError"] is False
    # Refused by an argument condition: a tool error naming the rule; the upstream never sees it.
    refused = final_message(_call(gw, "engineering", "github__create_issue", {"repo": "evil/web"}))["result"]
    assert refused["isError"] is True
    assert "github-write-own-repos" in refused["content"][0]["text"]
    # Not for this tenant at all: as if the tool did not exist.
    for tenant, tool in (("support", "github__create_issue"), ("engineering", "github__delete_repo")):
        unknown = _call(gw, tenant, tool, {"repo": "acme/web"})
        assert unknown.json()["error"]["code"] == -32602 and "Unknown tool" in unknown.json()["error"]["message"]
    assert [(c["name"], c["arguments"]) for c in _calls_upstream(record)] == [("create_issue", {"repo": "acme/web"})]
    # Every denial is an audit line naming tenant, subject, target and rule.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum('"event":"deny"' in line for line in gw.proc.output) < 3:
        time.sleep(0.1)
    audits = [
        json.loads(line.split("mcp_gateway.audit: ", 1)[1]) for line in gw.proc.output if "mcp_gateway.audit" in line
    ]
    assert {(a["tenant"], a["target"], a["rule"]) for a in audits} == {
        ("engineering", "github__create_issue", "github-write-own-repos"),
        ("support", "github__create_issue", "support-never-writes"),
        ("engineering", "github__delete_repo", "never-delete"),
    }


def test_an_edit_applies_within_a_second_and_a_broken_edit_keeps_the_last_good_policy(governed):
    gw, _, policy_dir = governed
    support = policy_dir / "support.yaml"
    assert "github__list_issues" in _tools(gw, "support")
    support.write_text(support.read_text().replace('"github__list_issues", ', ""))
    deadline = time.monotonic() + 1.0
    while "github__list_issues" in _tools(gw, "support"):
        assert time.monotonic() < deadline, "the edit did not apply within a second"
        time.sleep(0.05)
    assert _tools(gw, "support") == {"github__get_issue"}

    support.write_text(support.read_text() + "\n  - name: broken\n    effect: maybe\n")
    deadline = time.monotonic() + 3
    while gw.readyz()["policy"]["ok"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = gw.readyz()["policy"]
    assert "support.yaml:" in status["error"] and "effect" in status["error"]
    assert _tools(gw, "support") == {"github__get_issue"}  # the last good policy is still in force
    # ... and the metric says so.
    metrics = {
        sample.name: sample.value
        for family in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{gw.port}/metrics").text)
        for sample in family.samples
        if sample.labels.get("result") in (None, "error")
    }
    assert metrics["mcp_gateway_policy_valid"] == 0
    assert metrics["mcp_gateway_policy_reloads_total"] >= 1


def test_policy_check_names_file_line_and_key(tmp_path):
    bad = tmp_path / "p"
    bad.mkdir()
    (bad / "t.yaml").write_text(
        "tenants: [x]\nrules:\n  - name: a\n    effect: allow\n    condition: 'args.repo =='\n"
        "  - name: a\n    effect: deny\n    colour: red\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mcp_gateway", "policy", "check", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert f"{bad}/t.yaml:8: rules[1].colour: unknown key" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "mcp_gateway", "policy", "check", str(ROOT / "policies")], capture_output=True, text=True
    )
    assert done.returncode == 0 and "ok (3 file(s)" in done.stdout


def test_policy_explain_agrees_with_the_gateway(governed):
    gw, record, policy_dir = governed
    cases = [
        ("engineering", "github__create_issue", {"repo": "acme/web"}),
        ("engineering", "github__create_issue", {"repo": "evil/web"}),
        ("engineering", "github__get_issue", {}),
        ("engineering", "github__delete_repo", {}),
        ("support", "github__list_issues", {}),
        ("support", "github__create_issue", {"repo": "acme/web"}),
    ]
    for tenant, tool, arguments in cases:
        argv = [sys.executable, "-m", "mcp_gateway", "policy", "explain", str(policy_dir), "--tenant", tenant]
        argv += ["--subject", f"{tenant}-user", "--tool", tool, "--args", json.dumps(arguments)]
        if tenant == "engineering":
            argv += ["--scope", "repo:write"]
        explained = subprocess.run(argv, capture_output=True, text=True)
        before = len(_calls_upstream(record))
        answer = _call(gw, tenant, tool, arguments).json()
        reached = len(_calls_upstream(record)) > before
        gateway_allows = "result" in answer and not answer["result"].get("isError") and reached
        assert (explained.returncode == 0) == gateway_allows, (tenant, tool, arguments, explained.stdout, answer)
        if not gateway_allows:
            hidden = "it is hidden" in explained.stdout
            assert hidden == ("error" in answer), (explained.stdout, answer)


# -- property: a denied target is never listed and never reaches an upstream -----------------------------

GENERATED_TOOLS = [f"tool_{i}" for i in range(6)]
GENERATED_PROMPTS = [f"up__prompt_{i}" for i in range(3)]
GENERATED_RESOURCES = [f"up://up__item/{i}" for i in range(3)]
_TARGETS = {
    "tools": [*(f"up__{t}" for t in GENERATED_TOOLS), "up__tool_*", "up__tool_[0-2]"],
    "prompts": [*GENERATED_PROMPTS, "up__prompt_*"],
    "resources": [*GENERATED_RESOURCES, "up://up__item/*"],
}
rule_strategy = st.sampled_from(list(_TARGETS)).flatmap(
    lambda kind: st.fixed_dictionaries(
        {
            "kind": st.just(kind),
            "effect": st.sampled_from(["allow", "deny", "require"]),
            "tenant": st.sampled_from(["engineering", "support", "*"]),
            "targets": st.lists(st.sampled_from(_TARGETS[kind]), min_size=1, max_size=3),
            # Conditions read tool arguments; prompts and resources get argument-free rules.
            "condition": st.sampled_from([None, None, "args.n > 2", "has(args.n)", "args.n == 1"])
            if kind == "tools"
            else st.none(),
            "scopes": st.sampled_from([[], [], ["repo:write"]]),
        }
    )
)
policy_strategy = st.fixed_dictionaries(
    {"default": st.sampled_from(["allow", "deny"]), "rules": st.lists(rule_strategy, max_size=8)}
)


def _write_policy(directory: Path, policy: dict) -> None:
    rules = []
    for index, rule in enumerate(policy["rules"]):
        entry: dict = {
            "name": f"r{index}",
            "effect": rule["effect"],
            "when": {"tenants": [rule["tenant"]], "scopes": rule["scopes"]},
            "targets": {rule["kind"]: rule["targets"]},
        }
        if rule["condition"]:
            entry["condition"] = rule["condition"]
        rules.append(entry)
    import yaml

    (directory / "policy.yaml").write_text(
        yaml.safe_dump({"tenants": ["*"], "default": policy["default"], "rules": rules})
    )


@pytest.fixture(scope="module")
def property_gateway(tmp_path_factory):
    """One gateway and upstream for every generated example: each example is a policy edit (hot reload)."""
    from tests.support.processes import Gateway, scripted_server

    tmp = tmp_path_factory.mktemp("policy-property")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text("tenants: ['*']\ndefault: allow\n")
    record = tmp / "up.jsonl"
    names = [arg for tool in GENERATED_TOOLS for arg in ("--tool-name", tool)]
    upstream, url = scripted_server(
        "--name",
        "up",
        "--tools",
        "0",
        "--no-special-tools",
        *names,
        "--prompts",
        "3",
        "--resources",
        "3",
        "--record",
        str(record),
    )
    gw = Gateway(
        {
            "auth": {"api_keys": _api_keys()},
            "policies": {"dir": str(policy_dir)},
            "upstreams": {"up": {"transport": "streamable_http", "url": url}},
        },
        tmp,
    )
    try:
        gw.wait_ready(upstreams_ready=1)
        yield gw, record, policy_dir
    finally:
        gw.stop()
        upstream.kill()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=policy_strategy, n=st.integers(min_value=0, max_value=4))
def test_a_denied_target_is_never_listed_and_a_call_to_it_never_reaches_the_upstream(property_gateway, policy, n):
    from mcp_gateway.auth.principal import Principal
    from mcp_gateway.policy import load_policies

    gw, record, policy_dir = property_gateway
    loaded_before = gw.readyz()["policy"].get("loaded_at", 0)
    _write_policy(policy_dir, policy)
    engine = load_policies(policy_dir)  # the same files, decided in the test
    deadline = time.monotonic() + 5
    while gw.readyz()["policy"].get("loaded_at", 0) == loaded_before:
        assert time.monotonic() < deadline, gw.readyz()["policy"]
        time.sleep(0.02)
    for tenant in KEYS:
        principal = Principal(tenant, f"{tenant}-user", frozenset(["repo:write"] if tenant == "engineering" else []))
        listed = _tools(gw, tenant)
        for tool in GENERATED_TOOLS:
            exposed = f"up__{tool}"
            decision = engine.decide(principal, "tools", exposed, "up", {"n": n})
            assert (exposed in listed) == decision.visible, (tenant, exposed, policy)
            before = len(_calls_upstream(record))
            answer = _call(gw, tenant, exposed, {"n": n}).json()
            reached = len(_calls_upstream(record)) > before
            assert reached == decision.allowed, (tenant, exposed, n, policy, answer)
            if not decision.visible:
                assert answer["error"]["code"] == -32602  # as if it did not exist
        prompts = {
            p["name"] for p in modern_post(gw.url, "prompts/list", headers=_as(tenant)).json()["result"]["prompts"]
        }
        resources = {
            r["uri"] for r in modern_post(gw.url, "resources/list", headers=_as(tenant)).json()["result"]["resources"]
        }
        for kind, names, listed_now, method, key in (
            ("prompts", GENERATED_PROMPTS, prompts, "prompts/get", "name"),
            ("resources", GENERATED_RESOURCES, resources, "resources/read", "uri"),
        ):
            for name in names:
                decision = engine.decide(principal, kind, name, "up", None)
                assert (name in listed_now) == decision.visible, (tenant, name, policy)
                before = sum(1 for r in read_records(record) if r.get("method") == method)
                modern_post(gw.url, method, {key: name}, headers=_as(tenant))
                reached = sum(1 for r in read_records(record) if r.get("method") == method) > before
                assert reached == decision.allowed, (tenant, name, policy)


def test_a_tenant_gets_a_curated_view_renamed_described_with_arguments_fixed_and_hidden(upstreams, gateway, tmp_path):
    policy_dir = tmp_path / "views"
    policy_dir.mkdir()
    (policy_dir / "all.yaml").write_text(
        """
tenants: ["*"]
default: allow
views:
  - tenants: [support]
    tools:
      github__search_issues:
        name: search_tickets
        description: Search the support tracker.
        fixed_args: {repo: acme/support}
        hidden_args: [org]
"""
    )
    record = tmp_path / "github.jsonl"
    _, url = upstreams(
        "--name",
        "github",
        "--tools",
        "0",
        "--no-special-tools",
        "--tool-name",
        "search_issues",
        "--record",
        str(record),
    )
    gw = gateway(
        {
            "auth": {"api_keys": _api_keys()},
            "policies": {"dir": str(policy_dir)},
            "upstreams": {"github": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
    )
    listed = modern_post(gw.url, "tools/list", headers=_as("support")).json()["result"]["tools"]
    [tool] = listed
    assert tool["name"] == "search_tickets" and tool["description"] == "Search the support tracker."
    assert "repo" not in tool["inputSchema"].get("properties", {}) and "org" not in tool["inputSchema"].get(
        "properties", {}
    )
    assert _tools(gw, "engineering") == {"github__search_issues"}  # other tenants see the catalog as it is

    answer = final_message(_call(gw, "support", "search_tickets", {"q": "refund", "org": "evil", "repo": "evil/x"}))
    assert answer["result"]["isError"] is False
    # The support tenant does not know the tool by its catalog name.
    unknown = _call(gw, "support", "github__search_issues", {"q": "x"}).json()
    assert unknown["error"]["code"] == -32602
    [sent] = _calls_upstream(record)
    assert sent["name"] == "search_issues" and sent["arguments"] == {"q": "refund", "repo": "acme/support"}
