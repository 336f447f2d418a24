"""The router's order of tries: priorities, weights, the cool-down of a target that just failed, retry
rounds, and errors that must not move on (the client's own mistakes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_bridge.config import BridgeConfig
from llm_bridge.errors import BridgeError
from llm_bridge.providers.base import Provider
from llm_bridge.router import Router


def router(models: dict[str, Any], backends: tuple[str, ...] = ("a", "b", "c")) -> Router:
    config = BridgeConfig.model_validate(
        {"backends": {name: {"provider": "openai"} for name in backends}, "models": models}
    )
    providers = {name: Provider(name, config.backends[name]) for name in backends}
    return Router(config, providers)


def run(r: Router, name: str, outcomes: dict[str, list[Any]]) -> tuple[str, list[tuple[str, str]], list[str]]:
    tried: list[str] = []

    async def operation(provider: Provider, model: str) -> str:
        tried.append(provider.name)
        outcome = outcomes[provider.name].pop(0) if outcomes.get(provider.name) else "ok"
        if isinstance(outcome, BridgeError):
            raise outcome
        return outcome

    resolved = r.resolve(name)
    assert resolved is not None
    _, served = asyncio.run(r.serve(resolved, operation))
    return served.backend, served.attempts, tried


def test_priorities_go_in_order_and_a_failed_target_cools_down() -> None:
    r = router({"m": {"targets": [{"backend": "a"}, {"backend": "b", "priority": 1}], "retries": 0}})
    backend, attempts, tried = run(r, "m", {"a": [BridgeError(503, "busy")]})
    assert (backend, tried) == ("b", ["a", "b"]) and attempts == [("a", "503 server_error")]
    # `a` failed a moment ago: the next request tries `b` first.
    assert run(r, "m", {})[2] == ["b"]


def test_client_errors_do_not_move_on() -> None:
    r = router({"m": {"targets": [{"backend": "a"}, {"backend": "b"}]}})
    with pytest.raises(BridgeError) as caught:
        run(r, "m", {"a": [BridgeError(400, "bad request")], "b": [BridgeError(400, "bad request")]})
    assert caught.value.status == 400


def test_retry_rounds_come_back_to_the_first_target() -> None:
    r = router({"m": {"targets": [{"backend": "a"}], "retries": 2, "backoff_ms": 1, "cooldown": 0}})
    backend, attempts, tried = run(r, "m", {"a": [BridgeError(500, "x"), BridgeError(502, "y")]})
    assert backend == "a" and tried == ["a", "a", "a"] and len(attempts) == 2


def test_weights_spread_within_a_priority() -> None:
    r = router({"m": {"targets": [{"backend": "a", "weight": 1}, {"backend": "b", "weight": 9}]}})
    firsts = [run(r, "m", {})[0] for _ in range(400)]
    assert 0.8 < firsts.count("b") / len(firsts) < 0.97


def test_names_globs_and_direct() -> None:
    r = router({"exact": {"targets": [{"backend": "a"}]}, "gpt-*": {"targets": [{"backend": "b"}]}})
    assert r.resolve("gpt-4o").route.targets[0].backend == "b"  # type: ignore[union-attr]
    assert r.resolve("a/whatever") is None  # direct names are off unless configured
    assert r.names() == ["exact"]
