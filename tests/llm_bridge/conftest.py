"""The LLM bridge's test rig: one replay backend (tests/support/llm_server.py, recorded real provider
traffic) and one gateway in front of it with a backend of every provider kind pointed at it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import Gateway, Proc, free_port, llm_server


@pytest.fixture(scope="session")
def replay() -> Iterator[str]:
    proc, url = llm_server()
    yield url
    proc.kill()


def llm_config(replay: str, **extra: Any) -> dict[str, Any]:
    """Every provider kind, each pointed at the replay server; `<backend>/<sample>` names reach them."""
    closed = f"http://127.0.0.1:{free_port()}"
    backends = {
        "replay": {"provider": "openai", "base_url": f"{replay}/v1", "api_key": "sk-replay"},
        "azure": {"provider": "azure", "base_url": replay, "api_key": "az-key"},
        "claude": {"provider": "anthropic", "base_url": replay, "api_key": "ant-key"},
        "bedrock": {
            "provider": "bedrock",
            "base_url": replay,
            "region": "us-east-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        },
        "gemini": {"provider": "gemini", "base_url": replay, "api_key": "g-key"},
        "vertex": {
            "provider": "vertex",
            "base_url": replay,
            "project": "proj",
            "region": "us-central1",
            "api_key": "ya29",
        },
        "replay2": {"provider": "openai", "base_url": f"{replay}/v1", "api_key": "sk-replay-2"},
        "down": {"provider": "openai", "base_url": f"{closed}/v1", "connect_timeout": 1},
        "slow": {"provider": "openai", "base_url": f"{replay}/v1", "first_token_timeout": 1, "timeout": 1},
    }
    models = {
        "gpt-echo": {"targets": [{"backend": "replay", "model": "echo"}]},
        "after-429": {
            "cooldown": 0,
            "targets": [
                {"backend": "replay", "model": "fault-429"},
                {"backend": "claude", "model": "basic", "priority": 1},
            ],
        },
        "after-500": {
            "cooldown": 0,
            "targets": [
                {"backend": "replay", "model": "fault-500"},
                {"backend": "bedrock", "model": "basic", "priority": 1},
            ],
        },
        "after-hang": {
            "cooldown": 0,
            "targets": [
                {"backend": "slow", "model": "fault-hang"},
                {"backend": "replay", "model": "echo", "priority": 1},
            ],
        },
        "after-down": {
            "cooldown": 0,
            "targets": [{"backend": "down", "model": "echo"}, {"backend": "replay", "model": "echo", "priority": 1}],
        },
        "spread": {
            "targets": [
                {"backend": "replay", "model": "echo", "weight": 1},
                {"backend": "replay2", "model": "echo", "weight": 3},
            ]
        },
        "always-429": {"targets": [{"backend": "replay", "model": "fault-429"}], "retries": 0},
        "claude-429": {"targets": [{"backend": "claude", "model": "fault-429"}], "retries": 0},
    }
    llm = {"direct": True, "backends": backends, "models": models, "prices": {"echo-1": {"input": 1.0, "output": 2.0}}}
    for key, value in extra.items():
        llm[key] = {**llm[key], **value} if isinstance(value, dict) and key in llm else value
    return {"llm": llm, "auth": {"api_keys": [api_key(CLIENT_KEY, "default", "tester")]}}


CLIENT_KEY = "sk-client"


def api_key(key: str, tenant: str, subject: str) -> dict[str, str]:
    return {"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": tenant, "subject": subject}


@pytest.fixture(scope="module")
def llm_gateway(replay: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("llm")
    gateway = Gateway({**llm_config(replay), "telemetry": {"access_log": str(tmp / "access.log")}}, tmp)
    gateway.access_log = tmp / "access.log"  # type: ignore[attr-defined]
    gateway.wait_ready()
    yield gateway
    gateway.stop()


@pytest.fixture
def recorded(replay: str) -> Callable[[], list[dict[str, Any]]]:
    """What the replay backend received during this test."""
    httpx.delete(f"{replay}/_requests")
    return lambda: httpx.get(f"{replay}/_requests").json()


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Gateway]]:
    started: list[Gateway] = []

    def start(config: dict[str, Any]) -> Gateway:
        gateway = Gateway(config, tmp_path)
        started.append(gateway)
        gateway.wait_ready()
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


__all__ = ["Proc", "llm_config"]
