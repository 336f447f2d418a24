"""Tenants' policies apply to LLM traffic as to MCP traffic: which models a tenant sees and may use (with
conditions on the request), request rates, and token and cost budgets shared by every gateway process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from tests.support.processes import Gateway, start_redis

from .conftest import api_key, llm_config

HI = [{"role": "user", "content": "hi"}]
POLICY = {
    "tenants": ["team-a"],
    "default": "deny",
    "rules": [
        {"name": "team-a-models", "effect": "allow", "targets": {"models": ["gpt-echo", "claude/*"]}},
        {
            "name": "short-answers",
            "effect": "require",
            "targets": {"models": ["gpt-echo"]},
            "condition": "!has(args.max_tokens) || args.max_tokens <= 100",
            "message": "answers are capped at 100 tokens",
        },
    ],
    "limits": [
        # echo answers cost 6 tokens and (5 * 1 + 1 * 2) / 1e6 USD each.
        {"name": "team-a-tokens", "per": "tenant", "targets": {"models": ["gpt-echo"]}, "tokens": "12/day"},
        {"name": "team-a-spend", "per": "subject", "targets": {"models": ["claude/*"]}, "cost": "0.000001/day"},
    ],
}


def policy_config(replay: str, tmp_path: Path, **state: Any) -> dict[str, Any]:
    directory = tmp_path / "policies"
    directory.mkdir(exist_ok=True)
    (directory / "team-a.yaml").write_text(yaml.safe_dump(POLICY))
    (directory / "defaults.yaml").write_text(yaml.safe_dump({"tenants": ["*"], "default": "allow"}))
    config = llm_config(
        replay, prices={"echo-1": {"input": 1.0, "output": 2.0}, "claude-*": {"input": 1.0, "output": 1.0}}
    )
    config["auth"] = {"api_keys": [api_key("sk-a1", "team-a", "alice"), api_key("sk-a2", "team-a", "bob")]}
    config["policies"] = {"dir": str(directory)}
    if state:
        config["state"] = state
    return config


def client(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{gateway.port}/v1", api_key=key, max_retries=0)


def test_models_the_policy_does_not_grant_are_absent(replay: str, tmp_path: Path, start_gateway: Any) -> None:
    gateway = start_gateway(policy_config(replay, tmp_path))
    alice = client(gateway, "sk-a1")
    assert [m.id for m in alice.models.list()] == ["gpt-echo"]  # claude/* is a glob: usable, not listable
    with pytest.raises(openai.NotFoundError):
        alice.chat.completions.create(model="after-429", messages=HI)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        alice.chat.completions.create(model="gpt-echo", messages=HI, max_tokens=500)
    assert "short-answers" in caught.value.message and "capped at 100" in caught.value.message
    assert alice.chat.completions.create(model="gpt-echo", messages=HI, max_tokens=50).choices[0].message.content


def test_token_budget_is_shared_by_the_tenant_and_refuses_once_used(
    replay: str, tmp_path: Path, start_gateway: Any
) -> None:
    gateway = start_gateway(policy_config(replay, tmp_path))
    alice, bob = client(gateway, "sk-a1"), client(gateway, "sk-a2")
    alice.chat.completions.create(model="gpt-echo", messages=HI)  # 6 tokens
    list(bob.chat.completions.create(model="gpt-echo", messages=HI, stream=True))  # 6 more, counted from the stream
    with pytest.raises(openai.RateLimitError) as caught:
        alice.chat.completions.create(model="gpt-echo", messages=HI)
    assert "team-a-tokens" in caught.value.message and caught.value.code == "budget_exceeded"
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_cost_budget_per_subject_through_the_anthropic_door(replay: str, tmp_path: Path, start_gateway: Any) -> None:
    gateway = start_gateway(policy_config(replay, tmp_path))
    alice = anthropic.Anthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key="sk-a1", max_retries=0)
    bob = anthropic.Anthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key="sk-a2", max_retries=0)
    ask = {"model": "claude/basic", "max_tokens": 10, "messages": HI}
    alice.messages.create(**ask)  # priced by the claude-* entry: over a millionth of a dollar at once
    with pytest.raises(anthropic.RateLimitError) as caught:
        alice.messages.create(**ask)
    assert "team-a-spend" in caught.value.body["error"]["message"]
    assert bob.messages.create(**ask).content  # per subject: bob has his own budget


def test_budgets_hold_across_gateway_processes(replay: str, tmp_path: Path, start_gateway: Any) -> None:
    redis_proc, url = start_redis()
    try:
        config = policy_config(replay, tmp_path, backend="redis", redis_url=url)
        first, second = start_gateway(config), start_gateway(config)
        client(first, "sk-a1").chat.completions.create(model="gpt-echo", messages=HI)
        client(second, "sk-a2").chat.completions.create(model="gpt-echo", messages=HI)
        for gateway in (first, second):
            with pytest.raises(openai.RateLimitError):
                client(gateway, "sk-a1").chat.completions.create(model="gpt-echo", messages=HI)
    finally:
        redis_proc.kill()
